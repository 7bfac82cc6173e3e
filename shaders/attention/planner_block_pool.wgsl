// Block-Sparse planner, step 1: mean-pool Q per (query head, query block) and K per (KV head, key
// block), dividing by the full block size (the reference zero-pads a short last block).
// Invocation (x: dim, y: block, z): z < num_heads pools query head z, else KV head z - num_heads.
// Rows are summed in ascending order, as the float64 reference does.
// Defines: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16, WG.
struct Params {
  num_queries: u32,
  num_keys: u32,
  num_heads: u32,
  block: u32,
  num_query_blocks: u32,
  num_key_blocks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read> k_pool: array<u32>;
#else
@group(0) @binding(2) var<storage, read> k_pool: array<f32>;
#endif
@group(0) @binding(3) var<storage, read> page_table: array<u32>;
// pooled_q[head][query block][dim]
@group(0) @binding(4) var<storage, read_write> pooled_q: array<f32>;
// pooled_k[kv head][key block][dim]
@group(0) @binding(5) var<storage, read_write> pooled_k: array<f32>;

#include "attention/planner_kv"

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x;
  let blk = gid.y;
  let z = gid.z;
  if (d >= HEAD_DIM) {
    return;
  }
  let b = params.block;
  if (z < params.num_heads) {
    if (blk >= params.num_query_blocks) {
      return;
    }
    let end = min(params.num_queries, (blk + 1u) * b);
    var sum = 0.0;
    for (var r = blk * b; r < end; r++) {
      sum += q_in[(r * params.num_heads + z) * HEAD_DIM + d];
    }
    pooled_q[(z * params.num_query_blocks + blk) * HEAD_DIM + d] = sum / f32(b);
  } else {
    let kv_head = z - params.num_heads;
    if (blk >= params.num_key_blocks) {
      return;
    }
    let end = min(params.num_keys, (blk + 1u) * b);
    var sum = 0.0;
    for (var t = blk * b; t < end; t++) {
      sum += planner_k(t, kv_head, d);
    }
    pooled_k[(kv_head * params.num_key_blocks + blk) * HEAD_DIM + d] = sum / f32(b);
  }
}
