// State shared by the prefill kernels (dense and block-sparse): LANES invocations share
// ROWS_PER_THREAD query rows, each lane owning LANE_VEC4S 16-byte columns of the head dim; the K and
// V tiles of KEYS_PER_TILE keys live in workgroup memory. Needs HEAD_DIM, LANES, ROW_GROUPS,
// ROWS_PER_THREAD, KEYS_PER_TILE, PAGE_SIZE and the flags SUBGROUPS, KV_F16 and FETCH_TILES
// (optional), and comes after common/paged_kv.
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

// A 16-byte word of the pool: a vec4 of f32, or 8 halves (WORD_VEC4S vec4s of the tile).
#if KV_F16
alias PoolWord = vec4<u32>;
const WORD_VEC4S = 2u;
fn unpack_pool_word(w: PoolWord) -> array<vec4<f32>, WORD_VEC4S> {
  return array(
    vec4(unpack2x16float(w.x), unpack2x16float(w.y)),
    vec4(unpack2x16float(w.z), unpack2x16float(w.w)),
  );
}
#else
alias PoolWord = vec4<f32>;
const WORD_VEC4S = 1u;
fn unpack_pool_word(w: PoolWord) -> array<vec4<f32>, WORD_VEC4S> {
  return array(w);
}
#endif
const TILE_POOL_VEC4S = DIM_VEC4S / WORD_VEC4S;

// Stores pool column `column` (one PoolWord of K and of V) into tile row `key`.
fn store_pool_word(key: u32, column: u32, k: PoolWord, v: PoolWord) {
  let k_vec4s = unpack_pool_word(k);
  let v_vec4s = unpack_pool_word(v);
  #unroll
  for (var u = 0u; u < WORD_VEC4S; u++) {
    store_tile_vec4(key, WORD_VEC4S * column + u, k_vec4s[u], v_vec4s[u]);
  }
}

// Copies pool column `column` of the row of `token` into tile row `key`, as zeros past kv_len.
// Uses the kernel's bindings k_pool, v_pool and page_table.
fn load_kv_column(key: u32, column: u32, token: u32, kv_len: u32, kv_head: u32) {
  var k = PoolWord();
  var v = PoolWord();
  if (token < kv_len) {
    let word = kv_row_word(page_table[token / PAGE_SIZE], kv_head, token % PAGE_SIZE) / 4u + column;
    k = k_pool[word];
    v = v_pool[word];
  }
  store_pool_word(key, column, k, v);
}

#if FETCH_TILES
// Register-staged tile loads (BLASST and block-sparse prefill; dense prefill loads directly):
// every invocation fetches its FETCHES 16-byte words of a tile's K and V rows into registers, all
// in flight at once, then store_fetched writes them to k_tile and v_tile, so a tile costs one
// memory round trip. Word i of a tile is key i / TILE_POOL_VEC4S, 16-byte column
// i % TILE_POOL_VEC4S of the pool row.
const TILE_WORDS = KEYS_PER_TILE * TILE_POOL_VEC4S;
const FETCHES = (TILE_WORDS + THREADS - 1) / THREADS;
var<private> k_fetch: array<PoolWord, FETCHES>;
var<private> v_fetch: array<PoolWord, FETCHES>;

// Fetch f of this invocation: the K (values false) or V word of pool row `row` (a u32 index / 4),
// or zero. BLASST prefill fetches V only for kept tiles; the other kernels fetch both.
fn fetch_half_word(f: u32, thread: u32, present: bool, row: u32, values: bool) {
  var w = PoolWord();
  if (present) {
    let word = row + (thread + f * THREADS) % TILE_POOL_VEC4S;
    if (values) {
      w = v_pool[word];
    } else {
      w = k_pool[word];
    }
  }
  if (values) {
    v_fetch[f] = w;
  } else {
    k_fetch[f] = w;
  }
}

fn fetch_word(f: u32, thread: u32, present: bool, row: u32) {
  fetch_half_word(f, thread, present, row, false);
  fetch_half_word(f, thread, present, row, true);
}

// Writes k_fetch to k_tile (values false) or v_fetch to v_tile.
fn store_fetched_half(thread: u32, values: bool) {
  #unroll
  for (var f = 0u; f < FETCHES; f++) {
    let i = thread + f * THREADS;
    if (i < TILE_WORDS) {
      let key = i / TILE_POOL_VEC4S;
      let vec4s = unpack_pool_word(select(k_fetch[f], v_fetch[f], values));
      #unroll
      for (var u = 0u; u < WORD_VEC4S; u++) {
        let c = WORD_VEC4S * (i % TILE_POOL_VEC4S) + u;
        if (values) {
          v_tile[key][c / LANES][c % LANES] = vec4s[u];
        } else {
          k_tile[key][c / LANES][c % LANES] = vec4s[u];
        }
      }
    }
  }
}

fn store_fetched(thread: u32) {
  store_fetched_half(thread, false);
  store_fetched_half(thread, true);
}
#endif

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
