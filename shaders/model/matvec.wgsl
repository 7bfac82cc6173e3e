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
#if SUBGROUPS
enable subgroups;
#endif
#include "common/model_activation"
#include "common/model_grid"

struct Params {
  out_rows: u32,
  // 16-byte vectors per weight row: in_features / 4 (f32) or in_features / 8 (f16).
  row_vecs: u32,
  in_features: u32,
  out_stride: u32,
  out_col: u32,
  x_offset: u32,
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
#if HAS_BIAS
@group(0) @binding(4) var<storage, read> bias: array<f32>;
#endif

#if SUBGROUPS
#else
var<workgroup> partials: array<array<f32, TOKENS>, WORKGROUP_SIZE>;
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
  let x_vecs = params.in_features / 4u;
  let x_base = params.x_offset / 4u;

  var acc: array<f32, TOKENS>;
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
          acc[t] += dot(wv[c], x[x_base + t * x_vecs + v * X_PER_VEC + c]);
        }
      }
    }
  }

#if SUBGROUPS
  for (var mask = LANES / 2u; mask > 0u; mask >>= 1u) {
    for (var t = 0u; t < TOKENS; t++) {
      acc[t] += subgroupShuffleXor(acc[t], mask);
    }
  }
#else
  partials[lid] = acc;
  workgroupBarrier();
  for (var stride = LANES / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) {
      for (var t = 0u; t < TOKENS; t++) {
        partials[lid][t] += partials[lid + stride][t];
      }
    }
    workgroupBarrier();
  }
  acc = partials[lid];
#endif

  if (lane != 0u || row_unclamped >= params.out_rows) {
    return;
  }
  let col = params.out_col + row;
  for (var t = 0u; t < TOKENS; t++) {
    var y = acc[t];
#if HAS_BIAS
    y += bias[col];
#endif
    y = epilogue_activation(y);
    let dst = t * params.out_stride + col;
#if ACCUMULATE
    y += out[dst];
#endif
    out[dst] = y;
  }
}
