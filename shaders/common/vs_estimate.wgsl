// What the three estimation kernels of Vertical-Slash / FlexPrefill share (attention/planner_vs_
// scores, _stats, _sums): their parameters, and the scaled scores of the last `rows` queries of a
// batch of heads, written once by planner_vs_scores and read by the other two:
// scaled[(local_head * rows + r) * num_keys + j] = q(row r) . k(j) * scale for the query heads
// head_offset + local_head. Entries of keys after a row's position are written but never read.
struct Params {
  num_queries: u32,
  q_start: u32,
  num_heads: u32,
  group_size: u32,
  rows: u32,
  scale: f32,
  num_keys: u32,
  head_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

fn scaled_index(local_head: u32, r: u32, key: u32) -> u32 {
  return (local_head * params.rows + r) * params.num_keys + key;
}

// Position of row r (the queries are the last `rows` of the prefill).
fn row_position(r: u32) -> u32 {
  return params.q_start + params.num_queries - params.rows + r;
}
