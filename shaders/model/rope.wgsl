// Rotary position embedding in place, Hugging Face Llama/Qwen2 rotate-half convention: dims i and
// i + d/2 of a head form a pair rotated by angle (start + t) * inv_freq[i], computed in f32 as
// transformers does. One invocation per (token, head, pair): the pass is a few bytes per token and
// purely memory-bound; q heads and k heads go in one dispatch. Heads are addressed through a token
// stride and element offsets, so q and k may be separate buffers or, with FUSED, regions of one
// fused qkv buffer (two writable bindings of one buffer are not allowed, hence the variant).
//
// sin and cos: model/rope_math.wgsl.
#include "common/model_grid"
#include "model/rope_math"

struct Params {
  tokens: u32,
  q_heads: u32,
  k_heads: u32,
  half_dim: u32,
  q_stride: u32,
  q_offset: u32,
  k_stride: u32,
  k_offset: u32,
}

const WORKGROUP_SIZE = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> start: array<u32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
#if FUSED
#else
@group(0) @binding(4) var<storage, read_write> k: array<f32>;
#endif

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = flat_workgroup(wid, groups) * WORKGROUP_SIZE + lid;
  let heads = params.q_heads + params.k_heads;
  if (idx >= params.tokens * heads * params.half_dim) {
    return;
  }
  let i = idx % params.half_dim;
  let h = (idx / params.half_dim) % heads;
  let t = idx / (params.half_dim * heads);

  let angle = f32(start[0] + t) * inv_freq[i];
  let sc = sin_cos(angle);
  let s = sc.x;
  let c = sc.y;

  if (h < params.q_heads) {
    let base = params.q_offset + t * params.q_stride + h * 2u * params.half_dim + i;
    let v = rotate(q[base], q[base + params.half_dim], c, s);
    q[base] = v.x;
    q[base + params.half_dim] = v.y;
  } else {
    let base = params.k_offset + t * params.k_stride + (h - params.q_heads) * 2u * params.half_dim + i;
#if FUSED
    let v = rotate(q[base], q[base + params.half_dim], c, s);
    q[base] = v.x;
    q[base + params.half_dim] = v.y;
#else
    let v = rotate(k[base], k[base + params.half_dim], c, s);
    k[base] = v.x;
    k[base + params.half_dim] = v.y;
#endif
  }
}
