// Appends the K and V rows of new tokens (absolute positions start .. start + T - 1) to the paged
// KV cache pools, pool[page][kvHead][slot][dim] (src/kernels/layout.ts), as f32 or f16 pairs
// (KV_F16). One invocation per 32-bit pool word of K and of V: reads of the source rows and writes
// of a token's head row are both contiguous. Sources are addressed by a token stride and element
// offsets, so K and V may come from separate [T][kvHeads][d] buffers or from one fused qkv buffer.
#include "common/model_grid"
#include "common/paged_kv"

struct Params {
  tokens: u32,
  k_stride: u32,
  k_offset: u32,
  v_stride: u32,
  v_offset: u32,
}

const WORKGROUP_SIZE = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> start: array<u32>;
@group(0) @binding(2) var<storage, read> page_table: array<u32>;
@group(0) @binding(3) var<storage, read> k_src: array<f32>;
@group(0) @binding(4) var<storage, read> v_src: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_pool: array<u32>;
@group(0) @binding(6) var<storage, read_write> v_pool: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = flat_workgroup(wid, groups) * WORKGROUP_SIZE + lid;
  let per_tensor = params.tokens * NUM_KV_HEADS * KV_ROW_WORDS;
  if (idx >= 2u * per_tensor) {
    return;
  }
  let is_v = idx >= per_tensor;
  let j = idx % per_tensor;
  let word = j % KV_ROW_WORDS;
  let head = (j / KV_ROW_WORDS) % NUM_KV_HEADS;
  let t = j / (KV_ROW_WORDS * NUM_KV_HEADS);
  let pos = start[0] + t;
  let dst = kv_row_word(page_table[pos / PAGE_SIZE], head, pos % PAGE_SIZE) + word;
#if KV_F16
  let dim = word * 2u;
#else
  let dim = word;
#endif
  if (is_v) {
    let src = params.v_offset + t * params.v_stride + head * HEAD_DIM + dim;
#if KV_F16
    v_pool[dst] = pack2x16float(vec2(v_src[src], v_src[src + 1u]));
#else
    v_pool[dst] = bitcast<u32>(v_src[src]);
#endif
  } else {
    let src = params.k_offset + t * params.k_stride + head * HEAD_DIM + dim;
#if KV_F16
    k_pool[dst] = pack2x16float(vec2(k_src[src], k_src[src + 1u]));
#else
    k_pool[dst] = bitcast<u32>(k_src[src]);
#endif
  }
}
