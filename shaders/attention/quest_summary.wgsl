// Quest page summaries: per logical page and KV head, the per-channel min and max of the keys,
//   summaries[page][kvHead][0][dim] = min, summaries[page][kvHead][1][dim] = max (f32).
// Workgroup (x = page - first_page, y = kvHead) reads the page's K rows once, invocations over the
// channels so that consecutive invocations read consecutive words. Only slots < kv_len count, so
// the current partial page is exact and appending tokens needs only its pages recomputed.
#include "common/paged_kv"

struct Params {
  first_page: u32,
  kv_len: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> k_pool: array<u32>;
@group(0) @binding(2) var<storage, read> page_table: array<u32>;
@group(0) @binding(3) var<storage, read_write> summaries: array<f32>;

const BIG = 3.0e38; // bounds of an empty page; such pages are never scored

fn key(word: u32, d: u32) -> f32 {
#if KV_F16
  return unpack2x16float(k_pool[word + d / 2u])[d % 2u];
#else
  return bitcast<f32>(k_pool[word + d]);
#endif
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let page = params.first_page + wid.x;
  let kv_head = wid.y;
  let start = page * PAGE_SIZE;
  let slots = select(0u, min(PAGE_SIZE, params.kv_len - start), start < params.kv_len);
  let physical = page_table[min(page, arrayLength(&page_table) - 1u)];
  let out = (page * NUM_KV_HEADS + kv_head) * 2u * HEAD_DIM;
  for (var d = lid; d < HEAD_DIM; d += WORKGROUP_SIZE) {
    var lo = BIG;
    var hi = -BIG;
    for (var s = 0u; s < slots; s++) {
      let x = key(kv_row_word(physical, kv_head, s), d);
      lo = min(lo, x);
      hi = max(hi, x);
    }
    summaries[out + d] = lo;
    summaries[out + HEAD_DIM + d] = hi;
  }
}
