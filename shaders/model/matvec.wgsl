// Linear layer for 1 to 4 tokens (decode): out[t][out_col + o] (=|+=) act(sum_i x[t][i] w[o][i] + b)
// with w in nn.Linear's [out][in] layout, f32 or f16 pairs packed in u32 (W_F16).
//
// Decode reads every weight once per token and does 2 flops per weight per token: it is bound by
// memory bandwidth, so the layout serves the loads. LANES consecutive invocations share one weight
// row; each loads 16-byte vectors (4 f32 or 8 f16 weights) at stride LANES, so a row is read as
// contiguous, fully coalesced segments, UNROLL vectors in flight per invocation before any math.
// The few token rows of x are reused from cache by every weight row. A workgroup of 256 handles
// 256 / LANES weight rows; the LANES partial dot products of a row are summed with subgroup
// shuffles (LANES <= the subgroup size) or, without subgroups, through workgroup memory.
//
// GATED_INPUT: x holds [T][2 * in_features] rows of gate | up (the gated MLP's first linear) and
// the input is silu(gate) * up, computed as it is loaded: the down projection without a SwiGLU pass.
// RMS_NORM: the input is RMSNorm(x) = x * rsqrt(mean(x^2) + eps) * norm_weight, the projections
// after a norm without a norm pass: sum_i w[o][i] (x[i] norm_weight[i]) and sum_i x[i]^2 are summed
// side by side (a row's lanes together read all of x) and reduced together, then the first is
// scaled by the second's rsqrt. No extra pass over x and no extra barrier.
#if SUBGROUPS
enable subgroups;
#endif
#include "common/model_activation"
#include "common/model_grid"
#include "model/linear_store"

struct Params {
  out_rows: u32,
  // 16-byte vectors per weight row: in_features / 4 (f32) or in_features / 8 (f16).
  row_vecs: u32,
  in_features: u32,
  out_stride: u32,
  out_col: u32,
  x_offset: u32,
  split_col: u32,
  out2_stride: u32,
  norm_eps: f32,
}

const WORKGROUP_SIZE = 256u;
const ROWS = WORKGROUP_SIZE / LANES;
const UNROLL = 4u;
#if W_F16
const X_PER_VEC = 2u; // vec4<f32> of x per 16-byte weight vector
#else
const X_PER_VEC = 1u;
#endif

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#if SPLIT_OUT
@group(0) @binding(OUT2_BINDING) var<storage, read_write> out2: array<f32>;
#endif
#if HAS_BIAS
@group(0) @binding(BIAS_BINDING) var<storage, read> bias: array<f32>;
#endif
#if RMS_NORM
@group(0) @binding(NORM_WEIGHT_BINDING) var<storage, read> norm_weight: array<vec4<f32>>;
// Per token: the dot product, then (from TOKENS on) the sum of squares of x.
const SUMS = 2 * TOKENS;
#else
const SUMS = TOKENS;
#endif

#if SUBGROUPS
#else
var<workgroup> partials: array<array<f32, SUMS>, WORKGROUP_SIZE>;
#endif

fn unpack_w(raw: vec4<u32>) -> array<vec4<f32>, X_PER_VEC> {
#if W_F16
  return array(
    vec4(unpack2x16float(raw.x), unpack2x16float(raw.y)),
    vec4(unpack2x16float(raw.z), unpack2x16float(raw.w)),
  );
#else
  return array(bitcast<vec4<f32>>(raw));
#endif
}

// Vector k of token t's input row.
fn x_vec(t: u32, k: u32) -> vec4<f32> {
  let x_vecs = params.in_features / 4u;
#if GATED_INPUT
  let base = params.x_offset / 4u + t * 2u * x_vecs + k;
  let gate = x[base];
  return gate / (vec4(1.0) + exp(-gate)) * x[base + x_vecs];
#else
  return x[params.x_offset / 4u + t * x_vecs + k];
#endif
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let lane = lid % LANES;
  let row_unclamped = flat_workgroup(wid, groups) * ROWS + lid / LANES;
  // Rows past the end recompute the last row (uniform control flow for the barriers), unstored.
  let row = min(row_unclamped, params.out_rows - 1u);
  let w_base = row * params.row_vecs;

  var acc: array<f32, SUMS>;
  for (var v0 = lane; v0 < params.row_vecs; v0 += LANES * UNROLL) {
    var raw: array<vec4<u32>, UNROLL>;
    for (var u = 0u; u < UNROLL; u++) {
      raw[u] = w[w_base + min(v0 + u * LANES, params.row_vecs - 1u)];
    }
    for (var u = 0u; u < UNROLL; u++) {
      let v = v0 + u * LANES;
      if (v >= params.row_vecs) {
        break;
      }
      let wv = unpack_w(raw[u]);
      for (var t = 0u; t < TOKENS; t++) {
        for (var c = 0u; c < X_PER_VEC; c++) {
          let k = v * X_PER_VEC + c;
          let xv = x_vec(t, k);
#if RMS_NORM
          acc[t] += dot(wv[c], xv * norm_weight[k]);
          acc[TOKENS + t] += dot(xv, xv);
#else
          acc[t] += dot(wv[c], xv);
#endif
        }
      }
    }
  }

#if SUBGROUPS
  for (var mask = LANES / 2u; mask > 0u; mask >>= 1u) {
    for (var i = 0u; i < SUMS; i++) {
      acc[i] += subgroupShuffleXor(acc[i], mask);
    }
  }
#else
  partials[lid] = acc;
  workgroupBarrier();
  for (var stride = LANES / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) {
      for (var i = 0u; i < SUMS; i++) {
        partials[lid][i] += partials[lid + stride][i];
      }
    }
    workgroupBarrier();
  }
  acc = partials[lid];
#endif

  if (lane != 0u || row_unclamped >= params.out_rows) {
    return;
  }
  for (var t = 0u; t < TOKENS; t++) {
#if RMS_NORM
    let inv = inverseSqrt(acc[TOKENS + t] / f32(params.in_features) + params.norm_eps);
    store_output(t, params.out_col + row, acc[t] * inv);
#else
    store_output(t, params.out_col + row, acc[t]);
#endif
  }
}
