// Quest page scoring: for every complete page p < num_full (all but the current one) and KV head,
//   bound[kvHead][p] = sum over the group's query heads h, channels d of max(q_hd min_d, q_hd max_d),
// an upper bound of q.k over the page's keys. Workgroup (page group, KV head): LANES invocations per
// page read the page's min/max summaries as 16-byte vectors (coalesced: 4 f32 channels, or with
// SUMMARY_F16 8 f16 channels), each summing its channels over the group's queries (in workgroup
// memory); then one tree reduction over the lanes. A workgroup scores ROUNDS * SLOTS pages (SLOTS =
// WORKGROUP_SIZE / LANES at a time); the rounds' loads are issued without a barrier between them.
// Summaries are 1/PAGE_SIZE of the cache: this pass is small and bandwidth bound.
// Defines: HEAD_DIM (a multiple of 4, of 8 with SUMMARY_F16), NUM_KV_HEADS, GROUP, LANES (a power
// of two), WORKGROUP_SIZE (a multiple of LANES), ROUNDS, SUMMARY_F16.

struct Params {
  num_full: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> summaries: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> bounds: array<f32>;

const DIM_VECS = HEAD_DIM / 4u; // vec4<f32> of q per head
#if SUMMARY_F16
const UNITS = 2u; // vec4<f32> per 16-byte vector of the summaries
#else
const UNITS = 1u;
#endif
const VECS = DIM_VECS / UNITS; // 16-byte vectors per min (or max) row
const SLOTS = WORKGROUP_SIZE / LANES;

var<workgroup> q_group: array<vec4<f32>, GROUP * DIM_VECS>;
var<workgroup> partial: array<f32, ROUNDS * WORKGROUP_SIZE>;

fn unpack_vec(raw: vec4<u32>) -> array<vec4<f32>, UNITS> {
#if SUMMARY_F16
  return array(
    vec4(unpack2x16float(raw.x), unpack2x16float(raw.y)),
    vec4(unpack2x16float(raw.z), unpack2x16float(raw.w)),
  );
#else
  return array(bitcast<vec4<f32>>(raw));
#endif
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv_head = wid.y;
  for (var i = lid; i < GROUP * DIM_VECS; i += WORKGROUP_SIZE) {
    q_group[i] = q_in[kv_head * GROUP * DIM_VECS + i];
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
        let lo = unpack_vec(summaries[base + v]);
        let hi = unpack_vec(summaries[base + VECS + v]);
        for (var g = 0u; g < GROUP; g++) {
          #unroll
          for (var u = 0u; u < UNITS; u++) {
            let q = q_group[g * DIM_VECS + v * UNITS + u];
            acc += max(q * lo[u], q * hi[u]);
          }
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
