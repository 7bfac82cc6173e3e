// Prefill planners, last step: the block-sparse kernel's mask words (block_sparse_prefill.wgsl)
// from a GPU plan, so that the kernel follows its planner in the same pass, with no readback. Per
// (head, query tile of MASK_ROWS mask rows), one workgroup writes the union of its rows' key
// blocks, ascending, each as [key block, a state per row] (0 absent, 1 full, 2 partial: the
// Vertical-Slash rule's partial state, which has no bitset slot), from entry packed[2 * tile] on
// (the launcher's capacity layout), and the entry past its last to packed[2 * tile + 1].
//  FROM_ROWS (Block-Sparse): row r = head * num_query_blocks + qb lists row_length[r] key blocks at
//    rows[r * row_stride ..]; all are full.
//  otherwise (Vertical-Slash, FlexPrefill): classes[(head * num_query_blocks + qb) * num_key_blocks
//    + kb] is 0 empty, 1 full, 2 partial; the workgroups of query tile 0 also copy their head's
//    column and diagonal bitsets to the rule section (rule_a on, layout of the planner's bits).
// Invocation i of workgroup (x: query tile, y: head) takes key blocks i, i + WG, ...; a workgroup
// scan places each chunk's listed blocks. Defines: WG (256), MASK_ROWS, FROM_ROWS, ROW_WORDS
// (bitmap words per mask row, FROM_ROWS only).
struct Params {
  num_queries: u32,
  q_start: u32,
  block_q: u32,
  block_k: u32,
  num_heads: u32,
  num_query_blocks: u32,
  num_key_blocks: u32,
  num_query_tiles: u32,
  entries_offset: u32,
  row_stride: u32,
  rule_a: u32,
  key_words: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
#if FROM_ROWS
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read> row_length: array<u32>;
#else
@group(0) @binding(1) var<storage, read> classes: array<u32>;
@group(0) @binding(2) var<storage, read> bits: array<u32>;
#endif
@group(0) @binding(3) var<storage, read_write> packed: array<u32>;

#include "common/workgroup_scan"

const ENTRY_WORDS = 1u + MASK_ROWS;

#if FROM_ROWS
// Bit kb of row r: whether mask row r of the tile lists key block kb.
var<workgroup> listed: array<atomic<u32>, MASK_ROWS * ROW_WORDS>;
#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tile = wid.x;
  let head = wid.y;
  let first_qb = tile * MASK_ROWS;
  let tile_rows = min(MASK_ROWS, params.num_query_blocks - first_qb);
  let last_query = min(params.num_queries, (first_qb + tile_rows) * params.block_q) - 1u;
  // Key blocks past the tile's last query are never listed.
  let key_blocks = min(params.num_key_blocks, (params.q_start + last_query) / params.block_k + 1u);
  let tile_index = head * params.num_query_tiles + tile;
  let first_entry = packed[2u * tile_index];
  let first_row = head * params.num_query_blocks + first_qb;

#if FROM_ROWS
  for (var w = lid; w < MASK_ROWS * ROW_WORDS; w += WG) {
    atomicStore(&listed[w], 0u);
  }
  workgroupBarrier();
  for (var r = 0u; r < tile_rows; r++) {
    let row = first_row + r;
    for (var i = lid; i < row_length[row]; i += WG) {
      let kb = rows[row * params.row_stride + i];
      atomicOr(&listed[r * ROW_WORDS + kb / 32u], 1u << (kb % 32u));
    }
  }
  workgroupBarrier();
#else
  if (tile == 0u) {
    for (var w = lid; w < params.key_words; w += WG) {
      let columns = head * params.key_words + w;
      let diagonals = (params.num_heads + head) * params.key_words + w;
      packed[params.rule_a + columns] = bits[columns];
      packed[params.rule_a + diagonals] = bits[diagonals];
    }
  }
#endif

  var used = 0u;
  for (var chunk = 0u; chunk < key_blocks; chunk += WG) {
    let kb = chunk + lid;
    var states: array<u32, MASK_ROWS>;
    var any = 0u;
    for (var r = 0u; r < MASK_ROWS; r++) {
      var state = 0u;
      if (kb < key_blocks && r < tile_rows) {
#if FROM_ROWS
        state = (atomicLoad(&listed[r * ROW_WORDS + kb / 32u]) >> (kb % 32u)) & 1u;
#else
        state = classes[(first_row + r) * params.num_key_blocks + kb];
#endif
      }
      states[r] = state;
      any |= state;
    }
    let flag = u32(any != 0u);
    let sums = prefix_sum(lid, flag);
    if (flag == 1u) {
      let base = params.entries_offset + (first_entry + used + sums.x - 1u) * ENTRY_WORDS;
      packed[base] = kb;
      for (var r = 0u; r < MASK_ROWS; r++) {
        packed[base + 1u + r] = states[r];
      }
    }
    used += sums.y;
  }
  if (lid == 0u) {
    packed[2u * tile_index + 1u] = first_entry + used;
  }
}
