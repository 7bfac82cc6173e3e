// Embedding lookup: out[t] = table[ids[t]] (+ positions[start + t], GPT-2's learned positions),
// tables as f32 or as f16 pairs packed in u32 (TABLE_F16; the position table has the same dtype).
// One invocation per 32-bit word of an output row (1 or 2 features): rows are copied as
// contiguous, coalesced runs. A table larger than a storage binding comes as row chunks, one
// dispatch each: a dispatch writes only the tokens whose id falls in its chunk.
#include "common/model_grid"

struct Params {
  tokens: u32,
  // 32-bit words per table row: features (f32) or features / 2 (f16).
  row_words: u32,
  row_start: u32,
  rows: u32,
}

const WORKGROUP_SIZE = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
#if TABLE_F16
@group(0) @binding(3) var<storage, read_write> out: array<vec2<f32>>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif
#if POSITIONS
@group(0) @binding(4) var<storage, read> start: array<u32>;
@group(0) @binding(5) var<storage, read> positions: array<u32>;
#endif

#if TABLE_F16
fn word_value(word: u32) -> vec2<f32> {
  return unpack2x16float(word);
}
#else
fn word_value(word: u32) -> f32 {
  return bitcast<f32>(word);
}
#endif

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = flat_workgroup(wid, groups) * WORKGROUP_SIZE + lid;
  if (idx >= params.tokens * params.row_words) {
    return;
  }
  let t = idx / params.row_words;
  let c = idx % params.row_words;
  let id = ids[t];
  if (id < params.row_start || id >= params.row_start + params.rows) {
    return;
  }
  var value = word_value(table[(id - params.row_start) * params.row_words + c]);
#if POSITIONS
  value += word_value(positions[(start[0] + t) * params.row_words + c]);
#endif
  out[idx] = value;
}
