// Block-sparse causal prefill attention over the paged KV cache: dense_prefill.wgsl restricted to a
// block mask (src/methods/reference/masks.ts), same layouts, lane split and online softmax.
//
// Workgroup (x = query head, y = query block) owns the BLOCK_Q queries of one mask row and walks
// only the key blocks the row lists, so empty blocks are never loaded. A K/V tile holds
// KEYS_PER_TILE keys as SEGMENT-key segments: a 64-key block spans several tiles when workgroup
// memory is short, and several 16-key blocks share one tile, so small blocks still fill a load.
// Per chunk of keys the mask mode is uniform: no mask (full block below the diagonal), causal only
// (full block on the diagonal), or the partial block's rule evaluated per element.
// The workgroup also writes how many key blocks it processed, so measured sparsity comes from the
// kernel itself rather than from the mask.
#if SUBGROUPS
enable subgroups;
#endif
#include "common/paged_kv"

// Defines from the launcher: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16, SUBGROUPS, LANES,
// ROWS_PER_THREAD, ROW_GROUPS, KEYS_PER_TILE, KEYS_PER_CHUNK, BLOCK_Q, BLOCK_K,
// SEGMENT = min(BLOCK_K, KEYS_PER_TILE) and the rule flags
// RULE_VERTICAL_SLASH, RULE_BITSET (neither: rule 'none', full blocks only).
struct Params {
  num_queries: u32,
  q_start: u32,
  q_scale: f32, // scale * log2(e)
  num_heads: u32,
  group_size: u32,
  num_query_blocks: u32,
  // Sections of mask_words: row starts at 0, entries (key block * 2 + kind) at entries_offset,
  // rule words at rule_a (columns / slots) and rule_b (diagonals / bits), rule_stride words apart
  // (keyWords per head / wordsPerBlock per slot).
  entries_offset: u32,
  rule_a: u32,
  rule_b: u32,
  rule_stride: u32,
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
@group(0) @binding(6) var<storage, read> mask_words: array<u32>;
@group(0) @binding(7) var<storage, read_write> counts: array<u32>;

#include "common/prefill_tiles"

// QUERY_TILE == BLOCK_Q (checked by the launcher).
const SEGMENTS_PER_BLOCK = BLOCK_K / SEGMENT;
const SEGMENTS_PER_TILE = KEYS_PER_TILE / SEGMENT;
const MODE_ALL = 0u;
const MODE_CAUSAL = 1u;
const MODE_RULE = 2u;

fn entry_word(entry: u32) -> u32 {
  return mask_words[params.entries_offset + entry];
}

// First key of segment `segment` of the row whose entries start at `first_entry`.
fn segment_first_key(first_entry: u32, segment: u32) -> u32 {
  let key_block = entry_word(first_entry + segment / SEGMENTS_PER_BLOCK) >> 1u;
  return key_block * BLOCK_K + segment % SEGMENTS_PER_BLOCK * SEGMENT;
}

fn mask_bit(word_offset: u32, bit: u32) -> bool {
  return ((mask_words[word_offset + bit / 32u] >> (bit % 32u)) & 1u) == 1u;
}

// Fills the tile with segments first_segment .. + SEGMENTS_PER_TILE of the row; segments past the
// row's end or wholly past last_key are skipped (never read), keys past kv_len become zeros.
fn load_kv_tile(
  first_entry: u32,
  first_segment: u32,
  num_segments: u32,
  last_key: u32,
  kv_len: u32,
  kv_head: u32,
  thread: u32,
) {
#if KV_F16
  const POOL_VEC4S = DIM_VEC4S / 2; // a vec4<u32> of the pool holds 8 halves
#else
  const POOL_VEC4S = DIM_VEC4S;
#endif
  for (var i = thread; i < KEYS_PER_TILE * POOL_VEC4S; i += THREADS) {
    let key = i / POOL_VEC4S;
    let column = i % POOL_VEC4S;
    let segment = first_segment + key / SEGMENT;
    if (segment >= num_segments) {
      break; // keys only grow with i
    }
    let segment_key = segment_first_key(first_entry, segment);
    if (segment_key > last_key) {
      continue;
    }
    let token = segment_key + key % SEGMENT;
    load_kv_column(key, column, token, kv_len, kv_head);
  }
}

// Whether a partial block keeps causal element (pos, key); block_row is the row within the query
// block, entry the mask entry and block_key the block's first key.
fn rule_keeps(head: u32, pos: u32, key: u32, block_row: u32, entry: u32, block_key: u32) -> bool {
#if RULE_VERTICAL_SLASH
  let head_words = head * params.rule_stride;
  return mask_bit(params.rule_a + head_words, key) ||
    mask_bit(params.rule_b + head_words, pos - key);
#else
#if RULE_BITSET
  let slot = mask_words[params.rule_a + entry];
  return mask_bit(params.rule_b + slot * params.rule_stride, block_row * BLOCK_K + key - block_key);
#else
  return true; // rule 'none' has no partial blocks
#endif
#endif
}

// Bit c set iff row pos keeps key first_key + c.
fn chunk_keep(
  mode: u32,
  first_key: u32,
  pos: u32,
  head: u32,
  block_row: u32,
  entry: u32,
  block_key: u32,
) -> u32 {
  if (mode == MODE_ALL) {
    return 0xffffffffu;
  }
  var bits = 0u;
  // Not unrolled: only a bitmask comes out, and the rule's code would repeat per key and row.
  for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
    let key = first_key + c;
    var kept = key <= pos;
    if (kept && mode == MODE_RULE) {
      kept = rule_keeps(head, pos, key, block_row, entry, block_key);
    }
    bits |= select(0u, 1u << c, kept);
  }
  return bits;
}

// Scores, online softmax update and P @ V for tile keys [tile_key, tile_key + KEYS_PER_CHUNK),
// absolute keys from first_key; row r of this invocation sits at position row_pos + r and at row
// block_row + r of the query block.
fn attend_chunk(
  tile_key: u32,
  first_key: u32,
  row_pos: u32,
  block_row: u32,
  lane: u32,
  mode: u32,
  head: u32,
  entry: u32,
  block_key: u32,
) {
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
    let keep = chunk_keep(mode, first_key, row_pos + r, head, block_row + r, entry, block_key);
    var chunk_max = NEG_BIG;
    #unroll
    for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
      let kept = ((keep >> c) & 1u) == 1u;
      scores[r][c] = select(NEG_BIG, scores[r][c], kept);
      chunk_max = max(chunk_max, scores[r][c]);
    }
    let new_max = max(row_max[r], chunk_max);
    let rescale = exp2(row_max[r] - new_max);
    row_max[r] = new_max;
    var chunk_sum = 0.0;
    #unroll
    for (var c = 0u; c < KEYS_PER_CHUNK; c++) {
      let kept = ((keep >> c) & 1u) == 1u;
      let p = select(0.0, exp2(scores[r][c] - new_max), kept);
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

@compute @workgroup_size(THREADS)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) num_workgroups: vec3<u32>,
  @builtin(local_invocation_index) thread: u32,
) {
  let head = workgroup.x;
  let kv_head = head / params.group_size;
  // Later query blocks (more causal keys) start first.
  let query_block = num_workgroups.y - 1u - workgroup.y;
  let first_query = query_block * QUERY_TILE;
  let lane = thread % LANES;
  let block_row = thread / LANES * ROWS_PER_THREAD;
  let first_row = first_query + block_row;
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

  let mask_row = head * params.num_query_blocks + query_block;
  let first_entry = mask_words[mask_row];
  let num_segments = (mask_words[mask_row + 1u] - first_entry) * SEGMENTS_PER_BLOCK;
  let unmasked_keys = params.q_start + first_query + 1u;
  let last_key = min(params.q_start + first_query + QUERY_TILE, kv_len) - 1u;
  var processed = 0u;
  for (var first_segment = 0u; first_segment < num_segments; first_segment += SEGMENTS_PER_TILE) {
    workgroupBarrier(); // every invocation is done with the previous tile
    load_kv_tile(first_entry, first_segment, num_segments, last_key, kv_len, kv_head, thread);
    workgroupBarrier();
    let tile_segments = min(SEGMENTS_PER_TILE, num_segments - first_segment);
    for (var s = 0u; s < tile_segments; s++) {
      let segment = first_segment + s;
      let entry = first_entry + segment / SEGMENTS_PER_BLOCK;
      let word = entry_word(entry);
      let block_key = (word >> 1u) * BLOCK_K;
      let segment_key = block_key + segment % SEGMENTS_PER_BLOCK * SEGMENT;
      if (segment % SEGMENTS_PER_BLOCK == 0u) {
        processed++;
      }
      for (var c = 0u; c < SEGMENT; c += KEYS_PER_CHUNK) {
        let chunk_key = segment_key + c;
        if (chunk_key > last_key) {
          break;
        }
        var mode = MODE_ALL;
        if ((word & 1u) == 1u) {
          mode = MODE_RULE;
        } else if (chunk_key + KEYS_PER_CHUNK > unmasked_keys) {
          mode = MODE_CAUSAL;
        }
        attend_chunk(
          s * SEGMENT + c,
          chunk_key,
          params.q_start + first_row,
          block_row,
          lane,
          mode,
          head,
          entry,
          block_key,
        );
      }
    }
  }
  if (thread == 0u) {
    counts[mask_row] = processed;
  }

  #unroll
  for (var r = 0u; r < ROWS_PER_THREAD; r++) {
    let query = first_row + r;
    if (query < params.num_queries) {
      let row = (query * params.num_heads + head) * DIM_VEC4S + lane;
      // A row the mask keeps no key of is 0, as in the reference.
      let inverse_sum = select(0.0, 1.0 / row_sum[r], row_sum[r] > 0.0);
      #unroll
      for (var j = 0u; j < LANE_VEC4S; j++) {
        out[row + j * LANES] = o_rows[r][j] * inverse_sum;
      }
    }
  }
}
