// Vertical-Slash / FlexPrefill estimation, step 2: per query head, the column sums and the diagonal
// sums of the softmax of the last `rows` queries (planner_vs_stats gives each row's max and sum).
// scores[head * num_keys + j] = sum over rows of p(row, key j);
// scores[(num_heads + head) * num_keys + d] = sum over rows of p(row, key pos(row) - d).
// Invocation (x: j or d, y: 0 columns / 1 diagonals, z: head); each invocation adds its rows in
// ascending order, as the float64 reference does, so equal entries there stay equal here.
// Query rows are staged in workgroup memory QROWS at a time.
// Defines: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16, WG, QROWS.
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
@group(0) @binding(5) var<storage, read_write> scores: array<f32>;

#include "attention/planner_kv"

var<workgroup> q_rows: array<f32, QROWS * HEAD_DIM>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let x = wid.x * WG + lid;
  let diagonal = wid.y == 1u;
  let head = wid.z;
  let kv_head = head / params.group_size;
  let first_row = params.num_queries - params.rows;
  var acc = 0.0;
  for (var chunk = 0u; chunk < params.rows; chunk += QROWS) {
    workgroupBarrier();
    for (var e = lid; e < QROWS * HEAD_DIM; e += WG) {
      let rr = chunk + e / HEAD_DIM;
      var value = 0.0;
      if (rr < params.rows) {
        value = q_in[((first_row + rr) * params.num_heads + head) * HEAD_DIM + e % HEAD_DIM];
      }
      q_rows[e] = value;
    }
    workgroupBarrier();
    let count = min(QROWS, params.rows - chunk);
    for (var c = 0u; c < count; c++) {
      let r = chunk + c;
      let pos = params.q_start + first_row + r;
      if (x > pos) {
        continue;
      }
      let key = select(x, pos - x, diagonal);
      var dot = 0.0;
      for (var d = 0u; d < HEAD_DIM; d++) {
        dot += q_rows[c * HEAD_DIM + d] * planner_k(key, kv_head, d);
      }
      let stat = (head * params.rows + r) * 2u;
      acc += exp(dot * params.scale - stats[stat]) / stats[stat + 1u];
    }
  }
  if (x < params.num_keys) {
    scores[(select(0u, params.num_heads, diagonal) + head) * params.num_keys + x] = acc;
  }
}
