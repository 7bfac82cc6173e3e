// RMSNorm (Llama, Qwen2: x * rsqrt(mean(x^2) + eps) * w) and LayerNorm (GPT-2: (x - mean) *
// rsqrt(var + eps) * w + b), chosen by LAYER_NORM. out[t] = norm(x[t]); x is left as it is (it is
// the residual stream).
//
// One workgroup of 256 per token row: a row (hidden size 576 to 4096) is a few KB, so each
// invocation takes a strided share of its 16-byte vectors (coalesced), partial sums meet in a
// workgroup-memory tree, and the row is re-read from cache for the output. LayerNorm takes the
// mean first and then the variance of (x - mean), as torch does, rather than E[x^2] - E[x]^2.
#include "common/model_grid"

struct Params {
  // features / 4: the row length in vec4 (features must be a multiple of 4).
  dim_vecs: u32,
  eps: f32,
}

const WORKGROUP_SIZE = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
#if LAYER_NORM
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
#endif

var<workgroup> sums: array<f32, WORKGROUP_SIZE>;

// Sum of `value` over the workgroup; every invocation gets it.
fn workgroup_sum(value: f32, lid: u32) -> f32 {
  sums[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      sums[lid] += sums[lid + stride];
    }
    workgroupBarrier();
  }
  let total = sums[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let base = flat_workgroup(wid, groups) * params.dim_vecs;
  let n = f32(params.dim_vecs * 4u);
#if LAYER_NORM
  var s = 0.0;
  for (var i = lid; i < params.dim_vecs; i += WORKGROUP_SIZE) {
    s += dot(x[base + i], vec4(1.0));
  }
  let mean = workgroup_sum(s, lid) / n;
  var s2 = 0.0;
  for (var i = lid; i < params.dim_vecs; i += WORKGROUP_SIZE) {
    let d = x[base + i] - mean;
    s2 += dot(d, d);
  }
  let inv = inverseSqrt(workgroup_sum(s2, lid) / n + params.eps);
  for (var i = lid; i < params.dim_vecs; i += WORKGROUP_SIZE) {
    out[base + i] = (x[base + i] - mean) * inv * weight[i] + bias[i];
  }
#else
  var s2 = 0.0;
  for (var i = lid; i < params.dim_vecs; i += WORKGROUP_SIZE) {
    let v = x[base + i];
    s2 += dot(v, v);
  }
  let inv = inverseSqrt(workgroup_sum(s2, lid) / n + params.eps);
  for (var i = lid; i < params.dim_vecs; i += WORKGROUP_SIZE) {
    out[base + i] = x[base + i] * inv * weight[i];
  }
#endif
}
