// Vertical-Slash / FlexPrefill planner, last step: classifies every (head, query block, key block)
// of the 'vertical-slash' rule (masks.ts) from the column and diagonal bitsets: per query row, the
// block's kept keys are the column bits OR the diagonal bits reversed (d = pos - j), masked to the
// causal keys, 32 keys per word. classes[(head * num_query_blocks + qb) * num_key_blocks + kb] =
// 0 empty (or not causal), 1 full (BLOCK_FULL + 1), 2 partial (BLOCK_PARTIAL + 1).
// Invocation (x: kb, y: qb, z: head). blockK must be a multiple of 32. Defines: WG.
struct Params {
  num_queries: u32,
  q_start: u32,
  num_heads: u32,
  key_words: u32,
  block_q: u32,
  block_k: u32,
  num_query_blocks: u32,
  num_key_blocks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// columns[head * key_words ..] then diagonals[(num_heads + head) * key_words ..]
@group(0) @binding(1) var<storage, read> bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> classes: array<u32>;

fn word_at(base: u32, w: i32) -> u32 {
  if (w < 0 || w >= i32(params.key_words)) {
    return 0u;
  }
  return bits[base + u32(w)];
}

// Bits start .. start + 31 of the bitset at `base` (bit 0 of the result is bit `start`).
fn bits_from(base: u32, start: i32) -> u32 {
  let w = start >> 5u;
  let s = u32(start & 31);
  let low = word_at(base, w) >> s;
  if (s == 0u) {
    return low;
  }
  return low | (word_at(base, w + 1) << (32u - s));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let kb = gid.x;
  let qb = gid.y;
  let head = gid.z;
  if (kb >= params.num_key_blocks || qb >= params.num_query_blocks) {
    return;
  }
  let first_row = qb * params.block_q;
  let row_end = min(params.num_queries, first_row + params.block_q);
  let column_base = head * params.key_words;
  let diagonal_base = (params.num_heads + head) * params.key_words;
  var kept = 0u;
  var causal = 0u;
  for (var i = first_row; i < row_end; i++) {
    let pos = params.q_start + i;
    for (var w = 0u; w < params.block_k / 32u; w++) {
      let first_key = kb * params.block_k + w * 32u;
      if (first_key > pos) {
        break;
      }
      // Key first_key + c is causal for c <= top; its diagonal is top - c.
      let top = pos - first_key;
      let mask = select((1u << (top + 1u)) - 1u, 0xffffffffu, top >= 31u);
      let columns = word_at(column_base, i32(first_key >> 5u));
      let diagonals = reverseBits(bits_from(diagonal_base, i32(top) - 31));
      kept += countOneBits((columns | diagonals) & mask);
      causal += countOneBits(mask);
    }
  }
  var kind = 0u;
  if (kept > 0u) {
    kind = select(2u, 1u, kept == causal);
  }
  classes[(head * params.num_query_blocks + qb) * params.num_key_blocks + kb] = kind;
}
