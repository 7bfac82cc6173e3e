// Block-Sparse planner, step 2: scores[(head * num_query_blocks + qb) * num_key_blocks + kb] =
// pooled q . pooled k (no scale, no softmax) for the causal key blocks kb <= first_block + qb; the
// dims are summed in ascending order as in the reference. Invocation (x: kb, y: qb, z: head).
// Defines: HEAD_DIM, WG.
struct Params {
  num_heads: u32,
  group_size: u32,
  num_query_blocks: u32,
  num_key_blocks: u32,
  first_block: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pooled_q: array<f32>;
@group(0) @binding(2) var<storage, read> pooled_k: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let kb = gid.x;
  let qb = gid.y;
  let head = gid.z;
  if (kb >= params.num_key_blocks || kb > params.first_block + qb) {
    return;
  }
  let kv_head = head / params.group_size;
  let q_base = (head * params.num_query_blocks + qb) * HEAD_DIM;
  let k_base = (kv_head * params.num_key_blocks + kb) * HEAD_DIM;
  var dot = 0.0;
  for (var d = 0u; d < HEAD_DIM; d++) {
    dot += pooled_q[q_base + d] * pooled_k[k_base + d];
  }
  scores[(head * params.num_query_blocks + qb) * params.num_key_blocks + kb] = dot;
}
