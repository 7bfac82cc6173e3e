// SnapKV / Ada-SnapKV importance (src/methods/reference/snapKV.ts windowImportance): per KV head g
// and key x, the softmax weights p(r, h, x) of the last `rows` prompt queries r and the group's
// query heads h (planner_vs_stats gives each (head, row) softmax max and sum), reduced in the
// reference's order (rows ascending, then heads): MAX_REDUCE takes the maximum, otherwise the sum
// of p / group. Keys past a row's causal range add nothing. importance[g * num_keys + x].
// Invocation (x: key, y: KV head). Defines: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16, WG,
// MAX_REDUCE.
struct Params {
  num_queries: u32,
  q_start: u32,
  num_heads: u32,
  group_size: u32,
  rows: u32,
  scale: f32,
  num_keys: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read> k_pool: array<u32>;
#else
@group(0) @binding(2) var<storage, read> k_pool: array<f32>;
#endif
@group(0) @binding(3) var<storage, read> page_table: array<u32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> importance: array<f32>;

#include "attention/planner_kv"

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = gid.x;
  let kv_head = gid.y;
  if (x >= params.num_keys) {
    return;
  }
  var k_row: array<f32, HEAD_DIM>;
  for (var d = 0u; d < HEAD_DIM; d++) {
    k_row[d] = planner_k(x, kv_head, d);
  }
  let first_row = params.num_queries - params.rows;
  let group = f32(params.group_size);
  var acc = 0.0;
  for (var r = 0u; r < params.rows; r++) {
    let pos = params.q_start + first_row + r;
    if (x > pos) {
      continue;
    }
    for (var j = 0u; j < params.group_size; j++) {
      let head = kv_head * params.group_size + j;
      let q_base = ((first_row + r) * params.num_heads + head) * HEAD_DIM;
      var dot = 0.0;
      for (var d = 0u; d < HEAD_DIM; d++) {
        dot += q_in[q_base + d] * k_row[d];
      }
      let stat = (head * params.rows + r) * 2u;
      let p = exp(dot * params.scale - stats[stat]) / stats[stat + 1u];
#if MAX_REDUCE
      acc = max(acc, p);
#else
      acc += p / group;
#endif
    }
  }
  importance[kv_head * params.num_keys + x] = acc;
}
