// Quest page scoring: for every complete page p < num_full (all but the current one) and KV head,
//   bound[kvHead][p] = sum over the group's query heads h, channels d of max(q_hd min_d, q_hd max_d),
// an upper bound of q.k over the page's keys. One invocation per (page, KV head); the group's
// queries sit in workgroup memory. Summaries are 1/PAGE_SIZE of the cache, so this pass is small.

struct Params {
  num_full: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<f32>;
@group(0) @binding(2) var<storage, read> summaries: array<f32>;
@group(0) @binding(3) var<storage, read_write> bounds: array<f32>;

var<workgroup> q_group: array<f32, GROUP * HEAD_DIM>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv_head = wid.y;
  let page = wid.x * WORKGROUP_SIZE + lid;
  for (var i = lid; i < GROUP * HEAD_DIM; i += WORKGROUP_SIZE) {
    q_group[i] = q_in[kv_head * GROUP * HEAD_DIM + i];
  }
  workgroupBarrier();
  if (page >= params.num_full) {
    return;
  }
  let base = (page * NUM_KV_HEADS + kv_head) * 2u * HEAD_DIM;
  var bound = 0.0;
  for (var g = 0u; g < GROUP; g++) {
    for (var d = 0u; d < HEAD_DIM; d++) {
      let q = q_group[g * HEAD_DIM + d];
      bound += max(q * summaries[base + d], q * summaries[base + HEAD_DIM + d]);
    }
  }
  bounds[kv_head * params.num_full + page] = bound;
}
