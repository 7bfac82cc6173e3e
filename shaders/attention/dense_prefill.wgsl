// Dense causal prefill attention over the paged KV cache, FlashAttention-2 style, all math in f32.
//
// Work split: workgroup (x = query head, y = query tile) owns QUERY_TILE consecutive queries of one
// head and walks the KV tiles 0 .. its diagonal, so no workgroup ever reads a fully masked tile. y
// counts down, so the longest (last) query tiles start first and the short ones fill the tail.
//
// Why this tiling: WebGPU has no tensor cores, so the bound is f32 FMA issue, and what competes with
// it for issue slots is every other instruction, above all workgroup-memory loads. So
//  - Q and O stay in registers for the whole KV walk, and the score row is reduced with subgroup
//    shuffles rather than through workgroup memory: the only workgroup memory is one K tile and one
//    V tile (KEYS_PER_TILE keys each, sized from the device's limit by the launcher), so there are
//    two barriers per KV tile and no P matrix round trip.
//  - LANES consecutive invocations (4; consecutive local indices are consecutive lanes of a
//    subgroup on the drivers we run on) share ROWS_PER_THREAD query rows; lane `lane` owns the
//    16-byte columns j * LANES + lane (j < LANE_VEC4S) of the head dim, of q, of o
//    and of every K and V row it reads. The lanes of a group therefore read 64 consecutive bytes of
//    a K or V row (no bank conflicts), and all row groups read the same row at the same time
//    (a broadcast), while each vec4 read feeds 4 * ROWS_PER_THREAD FMAs.
//  - A score is the sum of LANES partial dot products (log2(LANES) xor shuffles); afterwards every
//    lane holds the whole score row, so the online softmax (running max m and sum l per row, in the
//    log2 domain: q is pre-scaled by scale * log2(e) and every exponential is exp2) needs no further
//    communication, and P @ V uses the lane's own columns of V.
//  - Keys are processed in chunks of KEYS_PER_CHUNK: ROWS_PER_THREAD x KEYS_PER_CHUNK scores live in
//    registers, and o is rescaled once per chunk rather than once per key.
//  - Only tiles that reach past the first query of the workgroup apply the causal mask; masked
//    scores get NEG_BIG for the max and probability 0 (NaN-free even for a row with no visible key
//    yet). Rows past num_queries compute with q = 0 and are not stored.
// The query tile is bounded by registers (q and o), the key tile by workgroup memory.
// Without subgroups LANES is 1: one invocation per row group holds whole rows (correct, slower).
#if SUBGROUPS
enable subgroups;
#endif
#include "common/paged_kv"

// Defines from the launcher: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16, SUBGROUPS, LANES,
// ROWS_PER_THREAD, ROW_GROUPS, KEYS_PER_TILE, KEYS_PER_CHUNK, and for BLASST (optional) BLASST
// and FETCH_TILES. The head counts are uniforms rather than defines: they only enter addresses,
// once per invocation, and models (and tests) with different GQA shapes then share one pipeline.
struct Params {
  num_queries: u32,
  q_start: u32,
  q_scale: f32, // scale * log2(e)
  num_heads: u32,
  group_size: u32, // query heads per KV head
#if BLASST
  log2_lambda: f32, // BLASST threshold in the log2 domain; -3.4e38 for lambda = 0 (keep all)
  order: u32, // 0 natural, 1 sink-and-most-recent-first
#endif
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<vec4<f32>>;
#if KV_F16
@group(0) @binding(2) var<storage, read> k_pool: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> v_pool: array<vec4<u32>>;
#else
@group(0) @binding(2) var<storage, read> k_pool: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v_pool: array<vec4<f32>>;
#endif
@group(0) @binding(4) var<storage, read> page_table: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
#if BLASST
// [head][query tile][skipped, kept], query tile t holding queries t * QUERY_TILE ...
@group(0) @binding(6) var<storage, read_write> counts: array<u32>;
#endif

#include "common/prefill_tiles"

// Copies keys [first_key, first_key + KEYS_PER_TILE) of kv_head into k_tile and v_tile; keys past
// kv_len (a partial last tile) become zeros. Consecutive invocations copy consecutive 16-byte words.
fn load_kv_tile(first_key: u32, kv_len: u32, kv_head: u32, thread: u32) {
#if KV_F16
  const POOL_VEC4S = DIM_VEC4S / 2; // a vec4<u32> of the pool holds 8 halves
#else
  const POOL_VEC4S = DIM_VEC4S;
#endif
  for (var i = thread; i < KEYS_PER_TILE * POOL_VEC4S; i += THREADS) {
    let key = i / POOL_VEC4S;
    let column = i % POOL_VEC4S;
    let token = first_key + key;
    load_kv_column(key, column, token, kv_len, kv_head);
  }
}

// Scores, online softmax update and P @ V for tile keys [tile_key, tile_key + KEYS_PER_CHUNK), whose
// absolute positions start at first_key; row r of this invocation sits at position row_pos + r.
fn attend_chunk(tile_key: u32, first_key: u32, row_pos: u32, lane: u32, masked: bool) {
  var scores: array<array<f32, KEYS_PER_CHUNK>, ROWS_PER_THREAD>;
  #unroll
  for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
    // Explicitly zeroed: SwiftShader did not re-zero a bare `var` declared inside this loop.
    var dots = array<f32, ROWS_PER_THREAD>();
    #unroll
    for (var j = 0u; j < LANE_VEC4S; j++) {
      let k = k_tile[tile_key + c][j][lane];
      #unroll
      for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        let q = q_rows[r][j];
        dots[r] = fma(q.x, k.x, fma(q.y, k.y, fma(q.z, k.z, fma(q.w, k.w, dots[r]))));
      }
    }
    #unroll
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
      scores[r][c] = lane_sum(dots[r]);
    }
  }

  #unroll
  for (var r = 0u; r < ROWS_PER_THREAD; r++) {
    if (masked) {
      #unroll
      for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
        scores[r][c] = select(scores[r][c], NEG_BIG, first_key + c > row_pos + r);
      }
    }
    var chunk_max = NEG_BIG;
    #unroll
    for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
      chunk_max = max(chunk_max, scores[r][c]);
    }
    let new_max = max(row_max[r], chunk_max);
    let rescale = exp2(row_max[r] - new_max);
    row_max[r] = new_max;
    var chunk_sum = 0.0;
    #unroll
    for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
      var p = exp2(scores[r][c] - new_max);
      if (masked) {
        p = select(p, 0.0, first_key + c > row_pos + r);
      }
      scores[r][c] = p;
      chunk_sum += p;
    }
    row_sum[r] = fma(row_sum[r], rescale, chunk_sum);
    #unroll
    for (var j = 0u; j < LANE_VEC4S; j++) {
      o_rows[r][j] *= rescale;
    }
  }

  #unroll
  for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
    #unroll
    for (var j = 0u; j < LANE_VEC4S; j++) {
      let v = v_tile[tile_key + c][j][lane];
      #unroll
      for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        o_rows[r][j] = fma(vec4(scores[r][c]), v, o_rows[r][j]);
      }
    }
  }
}

#if BLASST
// BLASST (block skipping in the online-softmax loop, src/methods/reference/blasst.ts): a KV tile
// is one block. Its scores are computed first (each row's block max m_blk); every row votes skip
// when it sees no key of the tile or m_blk - m < log2(lambda) with m its running max (a row that
// has seen nothing yet votes keep; rows past num_queries vote skip). Only when some row votes keep
// does the workgroup run the softmax update and P @ V on the scores it kept in registers
// (attend_scores): a kept tile costs what dense's does, a skipped one its Q K^T.
// Loads: a tile's K words are fetched into registers, all in flight at once (FETCH_TILES in
// common/prefill_tiles), then stored to workgroup memory; its V words only once the vote keeps it,
// so a skipped tile saves its V load, at one more barrier per tile. (Fetching the next tile during
// the current one's math measured slower on the H200: 17.9 against 18.5 ms at 8K; the registers it
// holds are what this kernel lacks.)
// The vote: one atomic per tile, two slots used alternately, so one barrier orders the votes
// before the read, and the other slot is cleared for the next tile meanwhile.
var<workgroup> keep_votes: array<atomic<u32>, 2>;

// The pool rows of this invocation's words of the current tile (0 where absent), found when its K
// is fetched and used again for its V.
var<private> fetch_rows: array<u32, FETCHES>;
var<private> fetch_present: array<bool, FETCHES>;

// Fetches this invocation's K words of keys [first_key, first_key + KEYS_PER_TILE) (zeros past
// kv_len) into registers; store_fetched_half (common/prefill_tiles) writes them to the tile.
fn fetch_tile_keys(first_key: u32, kv_len: u32, kv_head: u32, thread: u32) {
  #unroll
  for (var f = 0u; f < FETCHES; f++) {
    let i = thread + f * THREADS;
    let token = first_key + i / TILE_POOL_VEC4S;
    let present = i < TILE_WORDS && token < kv_len;
    var row = 0u;
    if (present) {
      row = kv_row_word(page_table[token / PAGE_SIZE], kv_head, token % PAGE_SIZE) / 4u;
    }
    fetch_rows[f] = row;
    fetch_present[f] = present;
    fetch_half_word(f, thread, present, row, false);
  }
}

fn fetch_tile_values(thread: u32) {
  #unroll
  for (var f = 0u; f < FETCHES; f++) {
    fetch_half_word(f, thread, fetch_present[f], fetch_rows[f], true);
  }
}

// First key of the i-th visited of num_tiles tiles. Sink-and-most-recent-first: the diagonal
// tile, then tile 0, then the rest ascending.
fn visited_first_key(i: u32, num_tiles: u32) -> u32 {
  let tile = select(i, select(i - 1u, num_tiles - 1u, i == 0u), params.order == 1u);
  return tile * KEYS_PER_TILE;
}

// The scores of tile keys [tile_key, tile_key + KEYS_PER_CHUNK) (absolute positions from
// first_key), NEG_BIG where causality hides them: attend_chunk's first half, kept apart so that a
// kept tile is not scored twice.
fn chunk_scores(
  tile_key: u32,
  first_key: u32,
  row_pos: u32,
  lane: u32,
  masked: bool,
) -> array<array<f32, KEYS_PER_CHUNK>, ROWS_PER_THREAD> {
  var scores: array<array<f32, KEYS_PER_CHUNK>, ROWS_PER_THREAD>;
  #unroll
  for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
    var dots = array<f32, ROWS_PER_THREAD>();
    #unroll
    for (var j = 0u; j < LANE_VEC4S; j++) {
      let k = k_tile[tile_key + c][j][lane];
      #unroll
      for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        let q = q_rows[r][j];
        dots[r] = fma(q.x, k.x, fma(q.y, k.y, fma(q.z, k.z, fma(q.w, k.w, dots[r]))));
      }
    }
    #unroll
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
      let score = lane_sum(dots[r]);
      scores[r][c] = select(score, NEG_BIG, masked && first_key + c > row_pos + r);
    }
  }
  return scores;
}

// attend_chunk's second half on scores from chunk_scores: online softmax update and P @ V. A copy
// rather than a split of attend_chunk, so that dense prefill's code stays as it was measured.
fn attend_scores(
  chunk: array<array<f32, KEYS_PER_CHUNK>, ROWS_PER_THREAD>,
  tile_key: u32,
  first_key: u32,
  row_pos: u32,
  lane: u32,
  masked: bool,
) {
  var scores = chunk;
  #unroll
  for (var r = 0u; r < ROWS_PER_THREAD; r++) {
    var chunk_max = NEG_BIG;
    #unroll
    for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
      chunk_max = max(chunk_max, scores[r][c]);
    }
    let new_max = max(row_max[r], chunk_max);
    let rescale = exp2(row_max[r] - new_max);
    row_max[r] = new_max;
    var chunk_sum = 0.0;
    #unroll
    for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
      var p = exp2(scores[r][c] - new_max);
      if (masked) {
        p = select(p, 0.0, first_key + c > row_pos + r);
      }
      scores[r][c] = p;
      chunk_sum += p;
    }
    row_sum[r] = fma(row_sum[r], rescale, chunk_sum);
    #unroll
    for (var j = 0u; j < LANE_VEC4S; j++) {
      o_rows[r][j] *= rescale;
    }
  }

  #unroll
  for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
    #unroll
    for (var j = 0u; j < LANE_VEC4S; j++) {
      let v = v_tile[tile_key + c][j][lane];
      #unroll
      for (var r = 0u; r < ROWS_PER_THREAD; r++) {
        o_rows[r][j] = fma(vec4(scores[r][c]), v, o_rows[r][j]);
      }
    }
  }
}

const TILE_CHUNKS = KEYS_PER_TILE / KEYS_PER_CHUNK;
#endif

@compute @workgroup_size(THREADS)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) num_workgroups: vec3<u32>,
  @builtin(local_invocation_index) thread: u32,
) {
  let head = workgroup.x;
  let kv_head = head / params.group_size;
  let first_query = (num_workgroups.y - 1u - workgroup.y) * QUERY_TILE;
  let lane = thread % LANES;
  let first_row = first_query + thread / LANES * ROWS_PER_THREAD;
  let kv_len = params.q_start + params.num_queries;

  #unroll
  for (var r = 0u; r < ROWS_PER_THREAD; r++) {
    let query = first_row + r;
    let row = (query * params.num_heads + head) * DIM_VEC4S + lane;
    #unroll
    for (var j = 0u; j < LANE_VEC4S; j++) {
      var q = vec4(0.0);
      if (query < params.num_queries) {
        q = q_in[row + j * LANES] * params.q_scale;
      }
      q_rows[r][j] = q;
      o_rows[r][j] = vec4(0.0);
    }
    row_max[r] = NEG_BIG;
    row_sum[r] = 0.0;
  }

  // Keys every row of the tile sees, and the last key any row of it sees.
  let unmasked_keys = params.q_start + first_query + 1u;
  let last_key = min(params.q_start + first_query + QUERY_TILE, kv_len) - 1u;
#if BLASST
  var skipped = 0u;
  var kept = 0u;
  let num_tiles = last_key / KEYS_PER_TILE + 1u;
  for (var i = 0u; i < num_tiles; i++) {
    let first_key = visited_first_key(i, num_tiles);
    workgroupBarrier(); // every invocation is done with the previous tile
    fetch_tile_keys(first_key, kv_len, kv_head, thread);
    store_fetched_half(thread, false);
    workgroupBarrier();
    let masked = first_key + KEYS_PER_TILE > unmasked_keys;
    let tile_keys = min(KEYS_PER_TILE, last_key + 1u - first_key);
    // The tile's scores stay in registers (chunks unrolled, so every index is a constant) for
    // the vote and, when the tile is kept, for the softmax update: K is scored once.
    var tile_scores: array<array<array<f32, KEYS_PER_CHUNK>, ROWS_PER_THREAD>, TILE_CHUNKS>;
    var tile_max: array<f32, ROWS_PER_THREAD>;
    #unroll
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
      tile_max[r] = NEG_BIG;
    }
    #unroll
    for (var chunk = 0u; chunk < TILE_CHUNKS; chunk++) {
      if (chunk * KEYS_PER_CHUNK < tile_keys) {
        let tile_key = chunk * KEYS_PER_CHUNK;
        tile_scores[chunk] = chunk_scores(
          tile_key,
          first_key + tile_key,
          params.q_start + first_row,
          lane,
          masked,
        );
        #unroll
        for (var r = 0u; r < ROWS_PER_THREAD; r++) {
          #unroll
          for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
            tile_max[r] = max(tile_max[r], tile_scores[chunk][r][c]);
          }
        }
      }
    }
    var keep = false;
    #unroll
    for (var r = 0u; r < ROWS_PER_THREAD; r++) {
      let sees = first_row + r < params.num_queries && tile_max[r] > NEG_BIG;
      let above = row_max[r] == NEG_BIG || tile_max[r] - row_max[r] >= params.log2_lambda;
      keep = keep || (sees && above);
    }
    if (keep) {
      atomicOr(&keep_votes[i & 1u], 1u);
    }
    workgroupBarrier();
    // The same value in every invocation; the branch below holds no barrier and no subgroup
    // operation, so it needs no uniform load (and its barrier).
    let keep_tile = atomicLoad(&keep_votes[i & 1u]) != 0u;
    if (thread == 0u) {
      atomicStore(&keep_votes[(i + 1u) & 1u], 0u);
    }
    // V only for a kept tile; the barrier is outside the branch, whose condition the uniformity
    // analysis cannot see is the same in every invocation.
    if (keep_tile) {
      fetch_tile_values(thread);
      store_fetched_half(thread, true);
    }
    workgroupBarrier();
    if (keep_tile) {
      kept += 1u;
      #unroll
      for (var chunk = 0u; chunk < TILE_CHUNKS; chunk++) {
        if (chunk * KEYS_PER_CHUNK < tile_keys) {
          let tile_key = chunk * KEYS_PER_CHUNK;
          attend_scores(
            tile_scores[chunk],
            tile_key,
            first_key + tile_key,
            params.q_start + first_row,
            lane,
            masked,
          );
        }
      }
    } else {
      skipped += 1u;
    }
  }
  if (thread == 0u) {
    let slot = (head * num_workgroups.y + first_query / QUERY_TILE) * 2u;
    counts[slot] = skipped;
    counts[slot + 1u] = kept;
  }
#else
  for (var first_key = 0u; first_key <= last_key; first_key += KEYS_PER_TILE) {
    workgroupBarrier(); // every invocation is done with the previous tile
    load_kv_tile(first_key, kv_len, kv_head, thread);
    workgroupBarrier();
    let masked = first_key + KEYS_PER_TILE > unmasked_keys;
    let tile_keys = min(KEYS_PER_TILE, last_key + 1u - first_key);
    for (var tile_key = 0u; tile_key < tile_keys; tile_key += KEYS_PER_CHUNK) {
      attend_chunk(tile_key, first_key + tile_key, params.q_start + first_row, lane, masked);
    }
  }
#endif

  #unroll
  for (var r = 0u; r < ROWS_PER_THREAD; r++) {
    let query = first_row + r;
    if (query < params.num_queries) {
      let row = (query * params.num_heads + head) * DIM_VEC4S + lane;
      let inverse_sum = 1.0 / row_sum[r];
      #unroll
      for (var j = 0u; j < LANE_VEC4S; j++) {
        out[row + j * LANES] = o_rows[r][j] * inverse_sum;
      }
    }
  }
}
