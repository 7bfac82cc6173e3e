// Vertical-Slash / FlexPrefill estimation, step 2: softmax statistics of each of the last `rows`
// queries over its causal keys, from the scaled scores (common/vs_estimate), per query head:
// stats[(head * rows + r) * 2] = max of the scaled scores, [.. + 1] = sum of exp(score - max)
// (two passes, as the float64 reference). Workgroup (x: r, y: local head). Defines: WG.
#include "common/vs_estimate"

@group(0) @binding(1) var<storage, read> scaled: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;

var<workgroup> reduce: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x;
  let local_head = wid.y;
  let keys = row_position(r) + 1u;
  let row = scaled_index(local_head, r, 0u);
  var m = -3.0e38;
  for (var t = lid; t < keys; t += WG) {
    m = max(m, scaled[row + t]);
  }
  reduce[lid] = m;
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step /= 2u) {
    if (lid < step) {
      reduce[lid] = max(reduce[lid], reduce[lid + step]);
    }
    workgroupBarrier();
  }
  let row_max = reduce[0];
  workgroupBarrier();
  var s = 0.0;
  for (var t = lid; t < keys; t += WG) {
    s += exp(scaled[row + t] - row_max);
  }
  reduce[lid] = s;
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step /= 2u) {
    if (lid < step) {
      reduce[lid] += reduce[lid + step];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let stat = ((params.head_offset + local_head) * params.rows + r) * 2u;
    stats[stat] = row_max;
    stats[stat + 1u] = reduce[0];
  }
}
