// Vertical-Slash / FlexPrefill estimation, step 1: softmax statistics of each of the last `rows`
// queries against its causal keys, per query head: stats[(head * rows + r) * 2] = max of the scaled
// scores, [.. + 1] = sum of exp(score - max) (two passes, as the float64 reference).
// Workgroup (x: r, y: head). Defines: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16, WG.
struct Params {
  num_queries: u32,
  q_start: u32,
  num_heads: u32,
  group_size: u32,
  rows: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read> k_pool: array<u32>;
#else
@group(0) @binding(2) var<storage, read> k_pool: array<f32>;
#endif
@group(0) @binding(3) var<storage, read> page_table: array<u32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;

#include "attention/planner_kv"

var<workgroup> q_row: array<f32, HEAD_DIM>;
var<workgroup> reduce: array<f32, WG>;

fn score(t: u32, kv_head: u32) -> f32 {
  var dot = 0.0;
  for (var d = 0u; d < HEAD_DIM; d++) {
    dot += q_row[d] * planner_k(t, kv_head, d);
  }
  return dot * params.scale;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x;
  let head = wid.y;
  let i = params.num_queries - params.rows + r;
  let keys = params.q_start + i + 1u;
  let kv_head = head / params.group_size;
  for (var d = lid; d < HEAD_DIM; d += WG) {
    q_row[d] = q_in[(i * params.num_heads + head) * HEAD_DIM + d];
  }
  workgroupBarrier();
  var m = -3.0e38;
  for (var t = lid; t < keys; t += WG) {
    m = max(m, score(t, kv_head));
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
    s += exp(score(t, kv_head) - row_max);
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
    stats[(head * params.rows + r) * 2u] = row_max;
    stats[(head * params.rows + r) * 2u + 1u] = reduce[0];
  }
}
