// Quest page summaries: per logical page and KV head, the per-channel min and max of the keys,
//   summaries[page][kvHead][0][dim] = min, summaries[page][kvHead][1][dim] = max,
// in the KV cache's own precision: f32, or with KV_F16 f16 pairs packed in u32 (word w holds dims
// 2w and 2w + 1). f16 keys are f16 values, so their min and max are exact in f16: the summaries
// lose nothing and the scoring pass reads half the bytes.
// Workgroup (x = page - first_page, y = kvHead) reads the page's K rows once, invocations over the
// channels (f32) or channel pairs (f16) so that consecutive invocations read consecutive words.
// Only slots < kv_len count, so the current partial page is exact and appending tokens needs only
// its pages recomputed.
#include "common/paged_kv"

struct Params {
  first_page: u32,
  kv_len: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> k_pool: array<u32>;
@group(0) @binding(2) var<storage, read> page_table: array<u32>;
@group(0) @binding(3) var<storage, read_write> summaries: array<u32>;

#if KV_F16
const WORDS = HEAD_DIM / 2u; // words per min (or max) row
const BIG = 65504.0; // the largest f16: bounds of an empty page, which is never scored
#else
const WORDS = HEAD_DIM;
const BIG = 3.0e38;
#endif

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let page = params.first_page + wid.x;
  let kv_head = wid.y;
  let start = page * PAGE_SIZE;
  let slots = select(0u, min(PAGE_SIZE, params.kv_len - start), start < params.kv_len);
  let physical = page_table[min(page, arrayLength(&page_table) - 1u)];
  let out = (page * NUM_KV_HEADS + kv_head) * 2u * WORDS;
  for (var w = lid; w < WORDS; w += WORKGROUP_SIZE) {
#if KV_F16
    var lo = vec2(BIG);
    var hi = vec2(-BIG);
    for (var s = 0u; s < slots; s++) {
      let x = unpack2x16float(k_pool[kv_row_word(physical, kv_head, s) + w]);
      lo = min(lo, x);
      hi = max(hi, x);
    }
    summaries[out + w] = pack2x16float(lo);
    summaries[out + WORDS + w] = pack2x16float(hi);
#else
    var lo = BIG;
    var hi = -BIG;
    for (var s = 0u; s < slots; s++) {
      let x = bitcast<f32>(k_pool[kv_row_word(physical, kv_head, s) + w]);
      lo = min(lo, x);
      hi = max(hi, x);
    }
    summaries[out + w] = bitcast<u32>(lo);
    summaries[out + WORDS + w] = bitcast<u32>(hi);
#endif
  }
}
