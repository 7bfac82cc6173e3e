// SnapKV / Ada-SnapKV importance (src/methods/reference/snapKV.ts windowImportance): per KV head g
// and key x, the softmax weights p(r, h, x) of the last `rows` prompt queries r and the group's
// query heads h, from the scaled scores and statistics of a batch of whole groups
// (common/vs_estimate, planner_vs_stats), reduced in the reference's order (rows ascending, then
// heads): MAX_REDUCE takes the maximum, otherwise the sum of p / group. Keys past a row's causal
// range add nothing. importance[g * num_keys + x].
// Invocation (x: key, y: KV head of the batch). Defines: WG, MAX_REDUCE.
#include "common/vs_estimate"

@group(0) @binding(1) var<storage, read> scaled: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> importance: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = gid.x;
  let local_kv_head = gid.y;
  if (x >= params.num_keys) {
    return;
  }
  let group = f32(params.group_size);
  var acc = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    if (x > row_position(r)) {
      continue;
    }
    for (var j = 0u; j < params.group_size; j++) {
      let local_head = local_kv_head * params.group_size + j;
      let stat = ((params.head_offset + local_head) * params.rows + r) * 2u;
      let p = exp(scaled[scaled_index(local_head, r, x)] - stats[stat]) / stats[stat + 1u];
#if MAX_REDUCE
      acc = max(acc, p);
#else
      acc += p / group;
#endif
    }
  }
  let kv_head = params.head_offset / params.group_size + local_kv_head;
  importance[kv_head * params.num_keys + x] = acc;
}
