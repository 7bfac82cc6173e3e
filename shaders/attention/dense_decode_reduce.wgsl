// Dense decode attention, reduce pass of flash decoding: merges the splits that dense_decode.wgsl
// wrote, per query head, with log-sum-exp rescaling (scores in the log2 domain):
//   M = max_s m_s,   out = sum_s exp2(m_s - M) acc_s / sum_s exp2(m_s - M) l_s.
// Workgroup (x = dim chunk, y = head): DIM_LANES invocations cover DIM_LANES vec4s of the head's
// output, and SPLIT_LANES groups of them walk the splits with stride SPLIT_LANES, each merging its
// splits online; the groups are then merged through workgroup memory. Partials are small (a few
// MB at most), so this pass only needs to be parallel enough to hide memory latency.
// BLASST: the workgroup (0, first head of a GQA group) also sums the splits' block counts of the
// group's KV head, [kv_head][split][skipped, kept] -> counts[kv_head][skipped, kept].

struct Params {
  kv_len: u32,
  tokens_per_split: u32,
  num_splits: u32,
  q_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> part_o: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> part_ml: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
#if BLASST
@group(0) @binding(4) var<storage, read> split_counts: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read_write> counts: array<vec2<u32>>;
#endif

const DIM_VECS = HEAD_DIM / 4u;
const NEG_BIG = -3.0e38;

var<workgroup> lane_ml: array<vec2<f32>, SPLIT_LANES>;
var<workgroup> lane_o: array<array<vec4<f32>, DIM_LANES>, SPLIT_LANES>;

@compute @workgroup_size(DIM_LANES * SPLIT_LANES)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wid.y;
  let dim_lane = lid % DIM_LANES;
  let split_lane = lid / DIM_LANES;
  // Lanes past the head's end read its last vector and write nothing.
  let dim_vec = min(wid.x * DIM_LANES + dim_lane, DIM_VECS - 1u);
#if BLASST
  if (wid.x == 0u && head % GROUP == 0u && lid == 0u) {
    let kv_head = head / GROUP;
    var total = vec2(0u);
    for (var s = 0u; s < params.num_splits; s++) {
      total += split_counts[kv_head * params.num_splits + s];
    }
    counts[kv_head] = total;
  }
#endif

  var m = NEG_BIG;
  var l = 0.0;
  var o = vec4(0.0);
  for (var s = split_lane; s < params.num_splits; s += SPLIT_LANES) {
    let ml = part_ml[head * params.num_splits + s];
    let acc = part_o[(head * params.num_splits + s) * DIM_VECS + dim_vec];
    let m_new = max(m, ml.x);
    let alpha = exp2(m - m_new);
    let beta = exp2(ml.x - m_new);
    l = l * alpha + ml.y * beta;
    o = o * alpha + acc * beta;
    m = m_new;
  }
  if (dim_lane == 0u) {
    lane_ml[split_lane] = vec2(m, l);
  }
  lane_o[split_lane][dim_lane] = o;
  workgroupBarrier();

  if (split_lane == 0u && wid.x * DIM_LANES + dim_lane < DIM_VECS) {
    var m_max = NEG_BIG;
    for (var i = 0u; i < SPLIT_LANES; i++) {
      m_max = max(m_max, lane_ml[i].x);
    }
    var l_sum = 0.0;
    var o_sum = vec4(0.0);
    for (var i = 0u; i < SPLIT_LANES; i++) {
      let w = exp2(lane_ml[i].x - m_max);
      l_sum += lane_ml[i].y * w;
      o_sum += lane_o[i][dim_lane] * w;
    }
    // A head that keeps no key (a user pattern's row can be empty) outputs 0, as the references do.
    out[head * DIM_VECS + dim_vec] = select(vec4(0.0), o_sum / l_sum, l_sum > 0.0);
  }
}
