// Rotary position embedding in place, Hugging Face Llama/Qwen2 rotate-half convention: dims i and
// i + d/2 of a head form a pair rotated by angle (start + t) * inv_freq[i], computed in f32 as
// transformers does. One invocation per (token, head, pair): the pass is a few bytes per token and
// purely memory-bound; q heads and k heads go in one dispatch. Heads are addressed through a token
// stride and element offsets, so q and k may be separate buffers or, with FUSED, regions of one
// fused qkv buffer (two writable bindings of one buffer are not allowed, hence the variant).
//
// cos/sin are evaluated here rather than with the builtins, which are only accurate to ~1e-4 on
// some adapters (SwiftShader) and lose accuracy at large arguments (angles reach 1e5 radians at
// long positions): Cody-Waite reduction by pi/2 with a 4-part constant whose first three parts
// have 7 significant bits (so n * part is exact for n < 2^17), then Cephes' f32 minimax
// polynomials on [-pi/4, pi/4] and the quadrant's swap of sin and cos.
#include "common/model_grid"

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
const TWO_OVER_PI = 0.6366197723675814;
const PIO2_1 = 1.5625;
const PIO2_2 = 0.0081787109375;
const PIO2_3 = 0.00011730194091796875;
const PIO2_4 = 3.1391647326017846e-7;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> start: array<u32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
#if FUSED
#else
@group(0) @binding(4) var<storage, read_write> k: array<f32>;
#endif

// (sin(angle), cos(angle)).
fn sin_cos(angle: f32) -> vec2<f32> {
  let n = round(angle * TWO_OVER_PI);
  let y = (((angle - n * PIO2_1) - n * PIO2_2) - n * PIO2_3) - n * PIO2_4;
  let z = y * y;
  let s = y + y * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z +
    z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  switch (u32(i32(n)) & 3u) {
    case 0u: {
      return vec2(s, c);
    }
    case 1u: {
      return vec2(c, -s);
    }
    case 2u: {
      return vec2(-s, -c);
    }
    default: {
      return vec2(-c, s);
    }
  }
}

fn rotate(a: f32, b: f32, c: f32, s: f32) -> vec2<f32> {
  return vec2(a * c - b * s, b * c + a * s);
}

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
