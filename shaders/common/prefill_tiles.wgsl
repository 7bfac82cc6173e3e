// State shared by the prefill kernels (dense and block-sparse): LANES invocations share
// ROWS_PER_THREAD query rows, each lane owning LANE_VEC4S 16-byte columns of the head dim; the K and
// V tiles of KEYS_PER_TILE keys live in workgroup memory. Needs HEAD_DIM, LANES, ROW_GROUPS,
// ROWS_PER_THREAD, KEYS_PER_TILE and the flag SUBGROUPS.
const THREADS = ROW_GROUPS * LANES;
const QUERY_TILE = ROW_GROUPS * ROWS_PER_THREAD;
const DIM_VEC4S = HEAD_DIM / 4;
const LANE_VEC4S = DIM_VEC4S / LANES;
const NEG_BIG = -3.0e38; // "minus infinity" that keeps max and exp2 free of NaN

// [key][j][lane] is the row-major [key][dim / 4] layout, typed so that the index the unrolled loops
// vary (j) is a separate dimension: its bounds check folds away once the loop is unrolled.
var<workgroup> k_tile: array<array<array<vec4<f32>, LANES>, LANE_VEC4S>, KEYS_PER_TILE>;
var<workgroup> v_tile: array<array<array<vec4<f32>, LANES>, LANE_VEC4S>, KEYS_PER_TILE>;

// Per-invocation state for its ROWS_PER_THREAD rows and its columns of the head dim.
var<private> q_rows: array<array<vec4<f32>, LANE_VEC4S>, ROWS_PER_THREAD>;
var<private> o_rows: array<array<vec4<f32>, LANE_VEC4S>, ROWS_PER_THREAD>;
var<private> row_max: array<f32, ROWS_PER_THREAD>;
var<private> row_sum: array<f32, ROWS_PER_THREAD>;

fn store_tile_vec4(key: u32, column: u32, k: vec4<f32>, v: vec4<f32>) {
  k_tile[key][column / LANES][column % LANES] = k;
  v_tile[key][column / LANES][column % LANES] = v;
}

// Sum over the LANES invocations of a row group; every lane gets the total.
fn lane_sum(partial: f32) -> f32 {
#if SUBGROUPS
  var total = partial;
  for (var offset = 1u; offset < LANES; offset <<= 1u) {
    total += subgroupShuffleXor(total, offset);
  }
  return total;
#else
  return partial;
#endif
}
