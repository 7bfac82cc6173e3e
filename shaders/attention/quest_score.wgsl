// Quest page scoring: for every complete page p < num_full (all but the current one) and KV head,
//   bound[kvHead][p] = sum over the group's query heads h, channels d of max(q_hd min_d, q_hd max_d),
// an upper bound of q.k over the page's keys. Workgroup (page group, KV head): LANES invocations per
// page read the page's min/max summaries as vec4s (coalesced), each summing its channels over the
// group's queries (in workgroup memory); then one tree reduction over the lanes. A workgroup scores
// ROUNDS * SLOTS pages (SLOTS = WORKGROUP_SIZE / LANES at a time); the rounds' loads are issued
// without a barrier between them. Summaries are 1/PAGE_SIZE of the cache: this pass is small and
// bandwidth bound.
// Defines: HEAD_DIM (a multiple of 4), NUM_KV_HEADS, GROUP, LANES (a power of two),
// WORKGROUP_SIZE (a multiple of LANES), ROUNDS.

struct Params {
  num_full: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> summaries: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> bounds: array<f32>;

const VECS = HEAD_DIM / 4u;
const SLOTS = WORKGROUP_SIZE / LANES;

var<workgroup> q_group: array<vec4<f32>, GROUP * VECS>;
var<workgroup> partial: array<f32, ROUNDS * WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv_head = wid.y;
  for (var i = lid; i < GROUP * VECS; i += WORKGROUP_SIZE) {
    q_group[i] = q_in[kv_head * GROUP * VECS + i];
  }
  workgroupBarrier();
  let lane = lid % LANES;
  let first = wid.x * ROUNDS * SLOTS + lid / LANES;
  for (var r = 0u; r < ROUNDS; r++) {
    let page = first + r * SLOTS;
    var acc = vec4(0.0);
    if (page < params.num_full) {
      let base = (page * NUM_KV_HEADS + kv_head) * 2u * VECS;
      for (var v = lane; v < VECS; v += LANES) {
        let lo = summaries[base + v];
        let hi = summaries[base + VECS + v];
        for (var g = 0u; g < GROUP; g++) {
          let q = q_group[g * VECS + v];
          acc += max(q * lo, q * hi);
        }
      }
    }
    partial[r * WORKGROUP_SIZE + lid] = (acc.x + acc.y) + (acc.z + acc.w);
  }
  workgroupBarrier();
  for (var step = LANES / 2u; step > 0u; step >>= 1u) {
    if (lane < step) {
      for (var r = 0u; r < ROUNDS; r++) {
        partial[r * WORKGROUP_SIZE + lid] += partial[r * WORKGROUP_SIZE + lid + step];
      }
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    for (var r = 0u; r < ROUNDS; r++) {
      let page = first + r * SLOTS;
      if (page < params.num_full) {
        bounds[kv_head * params.num_full + page] = partial[r * WORKGROUP_SIZE + lid];
      }
    }
  }
}
