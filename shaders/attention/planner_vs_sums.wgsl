// Vertical-Slash / FlexPrefill estimation, step 3: per query head, the column sums and the diagonal
// sums of the softmax of the last `rows` queries, from the scaled scores (common/vs_estimate) and
// the statistics of planner_vs_stats:
// scores[head * num_keys + j] = sum over rows of p(row, key j);
// scores[(num_heads + head) * num_keys + d] = sum over rows of p(row, key pos(row) - d).
// Invocation (x: j or d, y: 0 columns / 1 diagonals, z: local head); each invocation adds its rows
// in ascending order, as the float64 reference does, so equal entries there stay equal here.
// Defines: WG.
#include "common/vs_estimate"

@group(0) @binding(1) var<storage, read> scaled: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = gid.x;
  let diagonal = gid.y == 1u;
  let local_head = gid.z;
  let head = params.head_offset + local_head;
  if (x >= params.num_keys) {
    return;
  }
  var acc = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    let pos = row_position(r);
    if (x > pos) {
      continue;
    }
    let key = select(x, pos - x, diagonal);
    let stat = (head * params.rows + r) * 2u;
    acc += exp(scaled[scaled_index(local_head, r, key)] - stats[stat]) / stats[stat + 1u];
  }
  scores[(select(0u, params.num_heads, diagonal) + head) * params.num_keys + x] = acc;
}
