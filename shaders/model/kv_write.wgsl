// Appends the K and V rows of new tokens (absolute positions start .. start + T - 1) to the paged
// KV cache pools, pool[page][kvHead][slot][dim] (src/kernels/layout.ts), as f32 or f16 pairs
// (KV_F16). One invocation per 32-bit pool word of K and of V: reads of the source rows and writes
// of a token's head row are both contiguous. Sources are addressed by a token stride and element
// offsets, so K and V may come from separate [T][kvHeads][d] buffers or from one fused qkv buffer.
//
// ROPE: the rotary embedding (Hugging Face's rotate-half: dims i and i + d/2 of a head form a pair
// rotated by angle (start + t) * inv_freq[i], in f32 as transformers computes it; sin and cos from
// model/rope_math.wgsl) in the same dispatch: q rotated in place, one invocation per (token, head,
// pair); k rotated in place in its source and written to the pool by one invocation per pair
// (f32) or two pairs (f16: the pairs of dims 2m, 2m + 1 fill whole pool words, so no word has two
// writers).
// K and V then come from one buffer (kv_src), which is writable.
#include "common/model_grid"
#include "common/paged_kv"
#if ROPE
#include "model/rope_math"
#endif

struct Params {
  tokens: u32,
  k_stride: u32,
  k_offset: u32,
  v_stride: u32,
  v_offset: u32,
  q_heads: u32,
}

const WORKGROUP_SIZE = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> start: array<u32>;
@group(0) @binding(2) var<storage, read> page_table: array<u32>;
#if ROPE
@group(0) @binding(3) var<storage, read_write> kv_src: array<f32>;
@group(0) @binding(4) var<storage, read_write> k_pool: array<u32>;
@group(0) @binding(5) var<storage, read_write> v_pool: array<u32>;
@group(0) @binding(6) var<storage, read_write> q: array<f32>;
@group(0) @binding(7) var<storage, read> inv_freq: array<f32>;
#else
@group(0) @binding(3) var<storage, read> k_src: array<f32>;
@group(0) @binding(4) var<storage, read> v_src: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_pool: array<u32>;
@group(0) @binding(6) var<storage, read_write> v_pool: array<u32>;
#endif

#if KV_F16
const DIMS_PER_WORD = 2u;
#else
const DIMS_PER_WORD = 1u;
#endif

// A pool word from one dim (f32) or two consecutive dims (f16) of a source row.
#if KV_F16
fn pool_word(a: f32, b: f32) -> u32 {
  return pack2x16float(vec2(a, b));
}
#else
fn pool_word(a: f32, b: f32) -> u32 {
  return bitcast<u32>(a);
}
#endif

// First pool word of token t's row of `head`.
fn pool_row(t: u32, head: u32) -> u32 {
  let pos = start[0] + t;
  return kv_row_word(page_table[pos / PAGE_SIZE], head, pos % PAGE_SIZE);
}

#if ROPE
const HALF = HEAD_DIM / 2u;
// K rotation pairs per invocation: 2 for f16 pools, so each invocation owns whole pool words.
const K_ITEMS = HALF / DIMS_PER_WORD;

fn rotate_q(j: u32) {
  let i = j % HALF;
  let h = (j / HALF) % params.q_heads;
  let t = j / (HALF * params.q_heads);
  let sc = sin_cos(f32(start[0] + t) * inv_freq[i]);
  let base = (t * params.q_heads + h) * HEAD_DIM + i;
  let v = rotate(q[base], q[base + HALF], sc.y, sc.x);
  q[base] = v.x;
  q[base + HALF] = v.y;
}

fn rotate_and_write_k(j: u32) {
  let item = j % K_ITEMS;
  let head = (j / K_ITEMS) % NUM_KV_HEADS;
  let t = j / (K_ITEMS * NUM_KV_HEADS);
  let base = params.k_offset + t * params.k_stride + head * HEAD_DIM;
  var low: array<f32, 2>;
  var high: array<f32, 2>;
  for (var p = 0u; p < DIMS_PER_WORD; p++) {
    let i = item * DIMS_PER_WORD + p;
    let sc = sin_cos(f32(start[0] + t) * inv_freq[i]);
    let v = rotate(kv_src[base + i], kv_src[base + i + HALF], sc.y, sc.x);
    kv_src[base + i] = v.x;
    kv_src[base + i + HALF] = v.y;
    low[p] = v.x;
    high[p] = v.y;
  }
  let row = pool_row(t, head);
  k_pool[row + item] = pool_word(low[0], low[1]);
  k_pool[row + item + HALF / DIMS_PER_WORD] = pool_word(high[0], high[1]);
}

fn write_v(j: u32) {
  let word = j % KV_ROW_WORDS;
  let head = (j / KV_ROW_WORDS) % NUM_KV_HEADS;
  let t = j / (KV_ROW_WORDS * NUM_KV_HEADS);
  let src = params.v_offset + t * params.v_stride + head * HEAD_DIM + word * DIMS_PER_WORD;
  v_pool[pool_row(t, head) + word] = pool_word(kv_src[src], kv_src[src + DIMS_PER_WORD - 1u]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = flat_workgroup(wid, groups) * WORKGROUP_SIZE + lid;
  let q_part = params.tokens * params.q_heads * HALF;
  let k_part = params.tokens * NUM_KV_HEADS * K_ITEMS;
  let v_part = params.tokens * NUM_KV_HEADS * KV_ROW_WORDS;
  if (idx < q_part) {
    rotate_q(idx);
  } else if (idx < q_part + k_part) {
    rotate_and_write_k(idx - q_part);
  } else if (idx < q_part + k_part + v_part) {
    write_v(idx - q_part - k_part);
  }
}
#else
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
  let dst = pool_row(t, head) + word;
  let dim = word * DIMS_PER_WORD;
  if (is_v) {
    let src = params.v_offset + t * params.v_stride + head * HEAD_DIM + dim;
    v_pool[dst] = pool_word(v_src[src], v_src[src + DIMS_PER_WORD - 1u]);
  } else {
    let src = params.k_offset + t * params.k_stride + head * HEAD_DIM + dim;
    k_pool[dst] = pool_word(k_src[src], k_src[src + DIMS_PER_WORD - 1u]);
  }
}
#endif
