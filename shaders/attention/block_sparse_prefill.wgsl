// Block-sparse causal prefill attention over the paged KV cache: dense_prefill.wgsl restricted to a
// block mask (src/methods/reference/masks.ts), same layouts, lane split and online softmax.
//
// Work split: workgroup (x = query head, y = query tile) owns QUERY_TILE queries, the MASK_ROWS
// consecutive query blocks (mask rows) of BLOCK_Q queries each: dense prefill's tiling, so each
// K/V tile load serves as many queries as dense's does. The launcher packs, per query tile, the
// union of its mask rows' key blocks (ascending), and per (union entry, mask row) a state: absent,
// full or partial (the bitset rule's slot with it). The workgroup loads only the union's blocks;
// every invocation scores only the blocks its own mask row lists (a block one of two rows lists
// measured about 0.8 of one both list on the H200: the idle subgroups' issue slots are not all
// taken up by the busy ones). The rows of a mask row are whole subgroups on the drivers we run on
// (32 invocations, 16 rows at 2 lanes per row, BLOCK_Q >= 16), so a block its mask row does not
// list is skipped by whole subgroups; the lane_sum shuffles under that branch pair lanes of one
// row, which always branch alike (hence subgroup_uniformity off).
// A K/V tile holds KEYS_PER_TILE keys as SEGMENT-key segments: a 64-key block spans several tiles,
// and several 16-key blocks share one, so small blocks still fill a load. Loads: every invocation
// fetches its words of a tile into registers, all in flight at once (the latency of mask entry,
// page table and pool, three dependent reads, paid once per tile rather than once per word), then
// stores them to workgroup memory.
// Per chunk of keys, a full block applies only the causal mask (none below the diagonal), a
// partial one its rule too, read as a word of bits per segment and row (segment_rule).
// The invocations also write how many key blocks their mask row processed, so measured sparsity
// comes from the kernel itself rather than from the mask.
#if SUBGROUPS
enable subgroups;
diagnostic(off, subgroup_uniformity);
#endif
#include "common/paged_kv"

// Defines from the launcher: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16, SUBGROUPS, LANES,
// ROWS_PER_THREAD, ROW_GROUPS, KEYS_PER_TILE, KEYS_PER_CHUNK, BLOCK_Q, BLOCK_K,
// SEGMENT = min(BLOCK_K, KEYS_PER_TILE), MASK_ROWS = QUERY_TILE / BLOCK_Q, FETCH_TILES (true) and
// the rule flags RULE_VERTICAL_SLASH, RULE_BITSET (neither: rule 'none', full blocks only).
struct Params {
  num_queries: u32,
  q_start: u32,
  q_scale: f32, // scale * log2(e)
  num_heads: u32,
  group_size: u32,
  num_query_blocks: u32,
  num_query_tiles: u32,
  // Sections of mask_words: per (head, query tile) its union's first entry and the entry past its
  // last at 0 (packTileMask on the CPU, planner_tile_mask.wgsl on the GPU), the entries (key
  // block, then MASK_ROWS states) at entries_offset, the vertical-slash columns at rule_a and the
  // diagonals or the bitset bits at rule_b, rule_stride words per head or per slot.
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

const SEGMENTS_PER_BLOCK = BLOCK_K / SEGMENT;
const SEGMENTS_PER_TILE = KEYS_PER_TILE / SEGMENT;
const ENTRY_WORDS = 1 + MASK_ROWS;
// A state word: 0 absent, STATE_FULL, or STATE_PARTIAL + 4 * bitset slot.
const STATE_FULL = 1u;
const STATE_PARTIAL = 2u;

fn entry_word(entry: u32, word: u32) -> u32 {
  return mask_words[params.entries_offset + entry * ENTRY_WORDS + word];
}

// 32 bits of the bitset at word_offset from bit `start` on (bit 0 of the result is bit `start`);
// bits before bit 0 read as 0.
fn bits_from(word_offset: u32, start: i32) -> u32 {
  let w = start >> 5u;
  let s = u32(start & 31);
  var low = 0u;
  if (w >= 0) {
    low = mask_words[word_offset + u32(w)] >> s;
  }
  if (s == 0u || w + 1 < 0) {
    return low;
  }
  return low | (mask_words[word_offset + u32(w + 1)] << (32u - s));
}

// Fetches this invocation's words of tile `load` (segments load * SEGMENTS_PER_TILE ..) of the
// union whose entries start at first_entry into registers (store_fetched, common/prefill_tiles,
// writes them to the tiles); segments past the union's end or wholly past last_key are not read,
// keys past kv_len become zeros.
fn fetch_tile(
  load: u32,
  first_entry: u32,
  num_segments: u32,
  last_key: u32,
  kv_len: u32,
  kv_head: u32,
  thread: u32,
) {
  #unroll
  for (var f = 0u; f < FETCHES; f++) {
    let i = thread + f * THREADS;
    let key = i / TILE_POOL_VEC4S;
    let segment = load * SEGMENTS_PER_TILE + key / SEGMENT;
    var present = false;
    var row = 0u;
    if (i < TILE_WORDS && segment < num_segments) {
      let block_key = entry_word(first_entry + segment / SEGMENTS_PER_BLOCK, 0u) * BLOCK_K;
      let segment_key = block_key + segment % SEGMENTS_PER_BLOCK * SEGMENT;
      let token = segment_key + key % SEGMENT;
      present = segment_key <= last_key && token < kv_len;
      if (present) {
        row = kv_row_word(page_table[token / PAGE_SIZE], kv_head, token % PAGE_SIZE) / 4u;
      }
    }
    fetch_word(f, thread, present, row);
  }
}

// Bit c set iff the block's rule keeps key segment_key + c for the row at position pos (c < SEGMENT
// <= 32; all set for a full block); block_row is the row within the query block, state the block's
// state word for it and block_key the block's first key. Read once per segment rather than per chunk
// of keys, as whole words of the rule's bitsets: the segment's column bits, its diagonal bits
// (d = pos - key, so reversed), or its row of the block's bitset.
fn segment_rule(
  state: u32,
  segment_key: u32,
  pos: u32,
  head: u32,
  block_row: u32,
  block_key: u32,
) -> u32 {
  if ((state & 3u) != STATE_PARTIAL || segment_key > pos) {
    return 0xffffffffu;
  }
#if RULE_VERTICAL_SLASH
  let head_words = head * params.rule_stride;
  let columns = bits_from(params.rule_a + head_words, i32(segment_key));
  // Bit i of the diagonals read is diagonal pos - segment_key - 31 + i: reversed, bit c is key c's.
  let diagonals = reverseBits(bits_from(params.rule_b + head_words, i32(pos - segment_key) - 31));
  return columns | diagonals;
#else
#if RULE_BITSET
  let slot_words = params.rule_b + (state >> 2u) * params.rule_stride;
  return bits_from(slot_words, i32(block_row * BLOCK_K + segment_key - block_key));
#else
  return 0xffffffffu; // rule 'none' has no partial blocks
#endif
#endif
}

// Bit c set iff key first_key + c is causal for the row at position pos (c < KEYS_PER_CHUNK <= 32).
fn chunk_causal(first_key: u32, pos: u32) -> u32 {
  if (first_key > pos) {
    return 0u;
  }
  if (first_key + KEYS_PER_CHUNK > pos + 1u) {
    return (1u << (pos + 1u - first_key)) - 1u; // 1 .. KEYS_PER_CHUNK - 1 keys
  }
  return 0xffffffffu;
}

// Scores, online softmax update and P @ V for tile keys [tile_key, tile_key + KEYS_PER_CHUNK),
// absolute keys from first_key; row r of this invocation sits at position row_pos + r, and bit
// rule_shift + c of rule[r] says whether the mask's rule keeps key first_key + c.
fn attend_chunk(
  tile_key: u32,
  first_key: u32,
  row_pos: u32,
  lane: u32,
  rule: array<u32, ROWS_PER_THREAD>,
  rule_shift: u32,
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
    let keep = chunk_causal(first_key, row_pos + r) & (rule[r] >> rule_shift);
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
  // Later query tiles (more causal keys) start first.
  let query_tile = num_workgroups.y - 1u - workgroup.y;
  let first_query = query_tile * QUERY_TILE;
  let lane = thread % LANES;
  let tile_row = thread / LANES * ROWS_PER_THREAD;
  let mask_row = tile_row / BLOCK_Q;
  let block_row = tile_row % BLOCK_Q;
  let first_row = first_query + tile_row;
  let query_block = query_tile * MASK_ROWS + mask_row;
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

  let tile_index = head * params.num_query_tiles + query_tile;
  let first_entry = mask_words[2u * tile_index];
  let num_segments = (mask_words[2u * tile_index + 1u] - first_entry) * SEGMENTS_PER_BLOCK;
  let num_loads = (num_segments + SEGMENTS_PER_TILE - 1u) / SEGMENTS_PER_TILE;
  // The last key any row of the tile sees, and the last one this invocation's query block sees.
  let last_key = min(params.q_start + first_query + QUERY_TILE, kv_len) - 1u;
  let block_last_key = min(params.q_start + first_query + (mask_row + 1u) * BLOCK_Q, kv_len) - 1u;
  var processed = 0u;
  for (var load = 0u; load < num_loads; load++) {
    workgroupBarrier(); // every invocation is done with the previous tile
    fetch_tile(load, first_entry, num_segments, last_key, kv_len, kv_head, thread);
    store_fetched(thread);
    workgroupBarrier();
    let tile_segments = min(SEGMENTS_PER_TILE, num_segments - load * SEGMENTS_PER_TILE);
    for (var s = 0u; s < tile_segments; s++) {
      let segment = load * SEGMENTS_PER_TILE + s;
      let entry = first_entry + segment / SEGMENTS_PER_BLOCK;
      let state = entry_word(entry, 1u + mask_row);
      // Uniform over the query block's invocations (whole subgroups): see the header.
      if (state != 0u) {
        let block_key = entry_word(entry, 0u) * BLOCK_K;
        let segment_key = block_key + segment % SEGMENTS_PER_BLOCK * SEGMENT;
        if (segment % SEGMENTS_PER_BLOCK == 0u) {
          processed++;
        }
        let row_pos = params.q_start + first_row;
        var rule: array<u32, ROWS_PER_THREAD>;
        #unroll
        for (var r = 0u; r < ROWS_PER_THREAD; r++) {
          rule[r] = segment_rule(state, segment_key, row_pos + r, head, block_row + r, block_key);
        }
        for (var c = 0u; c < SEGMENT; c += KEYS_PER_CHUNK) {
          let chunk_key = segment_key + c;
          if (chunk_key > block_last_key) {
            break;
          }
          attend_chunk(s * SEGMENT + c, chunk_key, row_pos, lane, rule, c);
        }
      }
    }
  }
  if (lane == 0u && block_row == 0u && query_block < params.num_query_blocks) {
    counts[head * params.num_query_blocks + query_block] = processed;
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
