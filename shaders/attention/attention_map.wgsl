// Attention maps: the dense causal softmax probabilities of a range of queries, pooled into a grid
// [head][query block][key block] of mean mass per query (the sum of the cell's probabilities over
// its rows, divided by the rows), and with a BlockMask the part of that mass on the elements the
// mask keeps. Three stages, one per pipeline (the launcher sets one flag):
//   STATS   one invocation per (query row, head): the row's softmax max and sum (online, log2 domain)
//   POOL    one invocation per (key block, query block, head): recomputes the cell's scores and adds
//           exp2(s - max) / sum; with MASK also the kept part, walking the mask's CSR row per row
//   CAPTURE copies the q rows of a step that fall in a query range (the model's capture hook)
// Why recompute rather than store P: at 8K tokens P is 8K x 8K per head; the grid is what is kept.
// Scores are plain f32 dot products (no tiling): this is an inspection tool, not a hot path.
// Defines: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16, one of STATS / POOL / CAPTURE, MASK (POOL),
// RULE_VERTICAL_SLASH, RULE_BITSET (MASK; neither: rule 'none').
const WORKGROUP = 64u;
const NEG_BIG = -3.0e38; // "minus infinity" that keeps max and exp2 free of NaN

#if CAPTURE
struct CaptureParams {
  start: u32, // absolute position of the step's row 0
  tokens: u32,
  query_start: u32,
  query_end: u32,
  row_width: u32, // numHeads * headDim
  row_stride: u32, // floats between the step's rows (q may be a region of a wider buffer)
  row_offset: u32, // floats before the step's row 0
}

@group(0) @binding(0) var<uniform> capture: CaptureParams;
@group(0) @binding(1) var<storage, read> q_step: array<f32>;
@group(0) @binding(2) var<storage, read_write> q_captured: array<f32>;

// x: column of the row, y: row of the step.
@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let column = id.x;
  let row = id.y;
  let pos = capture.start + row;
  if (column >= capture.row_width || row >= capture.tokens || pos < capture.query_start ||
      pos >= capture.query_end) {
    return;
  }
  let src = capture.row_offset + row * capture.row_stride + column;
  q_captured[(pos - capture.query_start) * capture.row_width + column] = q_step[src];
}
#else
#include "common/paged_kv"

struct Params {
  num_queries: u32,
  q_start: u32,
  q_scale: f32, // scale * log2(e)
  num_heads: u32,
  group_size: u32, // query heads per KV head
  block: u32, // rows and keys per grid cell
  num_query_blocks: u32,
  num_key_blocks: u32,
  // The mask (MASK): its block sizes and query blocks, and its words as in block_sparse_prefill.
  mask_block_q: u32,
  mask_block_k: u32,
  mask_query_blocks: u32,
  entries_offset: u32,
  rule_a: u32,
  rule_b: u32,
  rule_stride: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read> k_pool: array<u32>;
#else
@group(0) @binding(2) var<storage, read> k_pool: array<f32>;
#endif
@group(0) @binding(3) var<storage, read> page_table: array<u32>;
#if STATS
// [head][row]: (max, sum of exp2(s - max)) of the row's scaled log2-domain scores.
@group(0) @binding(4) var<storage, read_write> row_stats: array<vec2<f32>>;
#else
@group(0) @binding(4) var<storage, read> row_stats: array<vec2<f32>>;
// [head][query block][key block]: mean mass per query.
@group(0) @binding(5) var<storage, read_write> mass: array<f32>;
#if MASK
// Same grid: the part of `mass` on elements the mask keeps.
@group(0) @binding(6) var<storage, read_write> kept: array<f32>;
// rowStart | entries (keyBlock * 2 + kind) | rule words a | rule words b.
@group(0) @binding(7) var<storage, read> mask_words: array<u32>;
#endif
#endif

// Scaled score (log2 domain) of query row `row` of `head` against key `key`.
fn score(row: u32, head: u32, key: u32) -> f32 {
  let kv_head = head / params.group_size;
  let q_base = (row * params.num_heads + head) * HEAD_DIM;
  let k_base = kv_row_word(page_table[key / PAGE_SIZE], kv_head, key % PAGE_SIZE);
  var dot = 0.0;
#if KV_F16
  for (var w = 0u; w < HEAD_DIM / 2u; w++) {
    let k = unpack2x16float(k_pool[k_base + w]);
    dot = fma(q_in[q_base + 2u * w], k.x, fma(q_in[q_base + 2u * w + 1u], k.y, dot));
  }
#else
  for (var d = 0u; d < HEAD_DIM; d++) {
    dot = fma(q_in[q_base + d], k_pool[k_base + d], dot);
  }
#endif
  return dot * params.q_scale;
}

#if STATS
// x: query row, y: head.
@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let row = id.x;
  let head = id.y;
  if (row >= params.num_queries) {
    return;
  }
  var row_max = NEG_BIG;
  var row_sum = 0.0;
  for (var key = 0u; key <= params.q_start + row; key++) {
    let s = score(row, head, key);
    let new_max = max(row_max, s);
    row_sum = row_sum * exp2(row_max - new_max) + exp2(s - new_max);
    row_max = new_max;
  }
  row_stats[head * params.num_queries + row] = vec2(row_max, row_sum);
}
#endif

#if POOL
#if MASK
fn mask_bit(word_offset: u32, bit: u32) -> bool {
  return ((mask_words[word_offset + bit / 32u] >> (bit % 32u)) & 1u) == 1u;
}

// Whether the mask entry `entry` (a block holding key `key`, first key block_key) keeps element
// (row, key) of head `head`; pos = q_start + row.
fn entry_keeps(entry: u32, head: u32, row: u32, pos: u32, key: u32, block_key: u32) -> bool {
  if ((mask_words[params.entries_offset + entry] & 1u) == 0u) {
    return true; // full block: every causal element
  }
#if RULE_VERTICAL_SLASH
  let head_words = head * params.rule_stride;
  return mask_bit(params.rule_a + head_words, key) ||
    mask_bit(params.rule_b + head_words, pos - key);
#else
#if RULE_BITSET
  let slot = mask_words[params.rule_a + entry];
  let bit = (row % params.mask_block_q) * params.mask_block_k + key - block_key;
  return mask_bit(params.rule_b + slot * params.rule_stride, bit);
#else
  return false; // rule 'none' has no partial blocks (the launcher rejects them)
#endif
#endif
}

// First entry in [first, end) whose key block is >= key_block (entries ascend within a row).
fn lower_bound(first: u32, end: u32, key_block: u32) -> u32 {
  var low = first;
  var high = end;
  while (low < high) {
    let middle = (low + high) / 2u;
    if ((mask_words[params.entries_offset + middle] >> 1u) < key_block) {
      low = middle + 1u;
    } else {
      high = middle;
    }
  }
  return low;
}
#endif

// x: key block, y: query block, z: head.
@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let key_block = id.x;
  let query_block = id.y;
  let head = id.z;
  if (key_block >= params.num_key_blocks) {
    return;
  }
  let first_row = query_block * params.block;
  let end_row = min(params.num_queries, first_row + params.block);
  let first_key = key_block * params.block;
  var cell_mass = 0.0;
  var cell_kept = 0.0;
  for (var row = first_row; row < end_row; row++) {
    let pos = params.q_start + row;
    let end_key = min(first_key + params.block, pos + 1u);
    if (first_key >= end_key) {
      continue;
    }
    let stats = row_stats[head * params.num_queries + row];
    let inverse_sum = 1.0 / stats.y;
#if MASK
    let mask_row = head * params.mask_query_blocks + row / params.mask_block_q;
    let entries_end = mask_words[mask_row + 1u];
    var entry = lower_bound(mask_words[mask_row], entries_end, first_key / params.mask_block_k);
#endif
    for (var key = first_key; key < end_key; key++) {
      let p = exp2(score(row, head, key) - stats.x) * inverse_sum;
      cell_mass += p;
#if MASK
      let mask_key_block = key / params.mask_block_k;
      while (entry < entries_end &&
             (mask_words[params.entries_offset + entry] >> 1u) < mask_key_block) {
        entry++;
      }
      if (entry < entries_end &&
          (mask_words[params.entries_offset + entry] >> 1u) == mask_key_block &&
          entry_keeps(entry, head, row, pos, key, mask_key_block * params.mask_block_k)) {
        cell_kept += p;
      }
#endif
    }
  }
  let rows = f32(max(end_row - first_row, 1u));
  let cell = (head * params.num_query_blocks + query_block) * params.num_key_blocks + key_block;
  mass[cell] = cell_mass / rows;
#if MASK
  kept[cell] = cell_kept / rows;
#endif
}
#endif
#endif
