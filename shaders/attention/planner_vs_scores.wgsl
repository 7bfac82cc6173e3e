// Vertical-Slash / FlexPrefill estimation, step 1: the scaled scores of the last `rows` queries
// against every key, per query head of a batch (common/vs_estimate), as a small tiled matrix
// product, so each K element is read once per 64 rows rather than once per row and per pass.
// Each score is one sum over d ascending, as in the float64 reference.
// Workgroup (x: tile of 64 keys, y: tile of 64 rows, z: local head), 256 invocations, each owning
// keys tx + 16a and rows ty + 16b (a, b < 4), so neighbouring invocations read neighbouring words of
// the tiles (dims past HEAD_DIM load as zeros). Defines: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16.
#include "common/vs_estimate"

@group(0) @binding(1) var<storage, read> q_in: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read> k_pool: array<u32>;
#else
@group(0) @binding(2) var<storage, read> k_pool: array<f32>;
#endif
@group(0) @binding(3) var<storage, read> page_table: array<u32>;
@group(0) @binding(4) var<storage, read_write> scaled: array<f32>;

#include "attention/planner_kv"

const TILE = 64u;
const DIM_STEP = 16u;

var<workgroup> q_tile: array<array<f32, TILE>, DIM_STEP>;
var<workgroup> k_tile: array<array<f32, TILE>, DIM_STEP>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let first_key = wid.x * TILE;
  let first_row = wid.y * TILE;
  let local_head = wid.z;
  let head = params.head_offset + local_head;
  let kv_head = head / params.group_size;
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc: array<array<f32, 4>, 4>;
  for (var d0 = 0u; d0 < HEAD_DIM; d0 += DIM_STEP) {
    workgroupBarrier();
    // 64 x 16 elements of each tile, 4 per invocation; 16 neighbours read one row's 16 dims.
    for (var e = 0u; e < 4u; e++) {
      let index = lid + 256u * e;
      let t = index / DIM_STEP;
      let d = index % DIM_STEP;
      let r = first_row + t;
      var q = 0.0;
      let dim = d0 + d;
      if (r < params.rows && dim < HEAD_DIM) {
        let i = params.num_queries - params.rows + r;
        q = q_in[(i * params.num_heads + head) * HEAD_DIM + dim];
      }
      q_tile[d][t] = q;
      let key = first_key + t;
      var k = 0.0;
      if (key < params.num_keys && dim < HEAD_DIM) {
        k = planner_k(key, kv_head, dim);
      }
      k_tile[d][t] = k;
    }
    workgroupBarrier();
    for (var d = 0u; d < DIM_STEP; d++) {
      var q: array<f32, 4>;
      var k: array<f32, 4>;
      #unroll
      for (var b = 0u; b < 4u; b++) {
        q[b] = q_tile[d][ty + 16u * b];
        k[b] = k_tile[d][tx + 16u * b];
      }
      #unroll
      for (var b = 0u; b < 4u; b++) {
        #unroll
        for (var a = 0u; a < 4u; a++) {
          acc[b][a] += q[b] * k[a];
        }
      }
    }
  }
  #unroll
  for (var b = 0u; b < 4u; b++) {
    let r = first_row + ty + 16u * b;
    #unroll
    for (var a = 0u; a < 4u; a++) {
      let key = first_key + tx + 16u * a;
      if (r < params.rows && key < params.num_keys) {
        scaled[scaled_index(local_head, r, key)] = acc[b][a] * params.scale;
      }
    }
  }
}
