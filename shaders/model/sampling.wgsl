// Top-K of a logits row in two passes (K = 1 is the argmax): the candidates the CPU samples from.
//   pass 1 (not FINAL): workgroup b takes the BLOCK = 256 * PER_THREAD logits starting at
//     b * BLOCK and writes its own top K (value, index) to the partials;
//   pass 2 (FINAL):     one workgroup takes all num_blocks * K partials and writes the top K.
// Each invocation keeps its PER_THREAD values in registers (strided over the block, so loads
// coalesce); then K rounds each pick the best value strictly after the previous pick in the order
// (value descending, index ascending) through a workgroup-memory tree. Ties go to the lower index,
// as torch.argmax and torch.topk do; NaN never wins. K <= 64 keeps the rounds cheap, and blocks of
// 2048 give a 150k vocabulary ~75 workgroups in pass 1.
#include "common/model_grid"

struct Params {
  // FINAL: the number of partial candidates; else: the vocabulary size.
  count: u32,
  // Element offset of the logits row (not FINAL).
  offset: u32,
}

const WORKGROUP_SIZE = 256u;
const BLOCK = WORKGROUP_SIZE * PER_THREAD;
const NO_INDEX = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: Params;
#if FINAL
@group(0) @binding(1) var<storage, read> in_values: array<f32>;
@group(0) @binding(2) var<storage, read> in_indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_values: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_indices: array<u32>;
#else
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out_values: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_indices: array<u32>;
#endif

var<workgroup> best_values: array<f32, WORKGROUP_SIZE>;
var<workgroup> best_indices: array<u32, WORKGROUP_SIZE>;

// Whether (va, ia) comes before (vb, ib): larger value first, then lower index; NaN never does.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return ia != NO_INDEX && (va > vb || (va == vb && ia < ib) || (ib == NO_INDEX && va == va));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let block = flat_workgroup(wid, groups);
  var values: array<f32, PER_THREAD>;
  var indices: array<u32, PER_THREAD>;
  for (var e = 0u; e < PER_THREAD; e++) {
    let j = block * BLOCK + e * WORKGROUP_SIZE + lid;
    let inside = j < params.count;
    let jc = min(j, params.count - 1u);
#if FINAL
    values[e] = in_values[jc];
    indices[e] = select(NO_INDEX, in_indices[jc], inside);
#else
    values[e] = logits[params.offset + jc];
    indices[e] = select(NO_INDEX, jc, inside);
#endif
  }

  var prev_value = 0.0;
  var prev_index = NO_INDEX;
  for (var r = 0u; r < K; r++) {
    // This invocation's best value after the previous pick.
    var bv = 0.0;
    var bi = NO_INDEX;
    for (var e = 0u; e < PER_THREAD; e++) {
      let after_prev = r == 0u || before(prev_value, prev_index, values[e], indices[e]);
      if (after_prev && before(values[e], indices[e], bv, bi)) {
        bv = values[e];
        bi = indices[e];
      }
    }
    best_values[lid] = bv;
    best_indices[lid] = bi;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
      if (lid < stride) {
        let ov = best_values[lid + stride];
        let oi = best_indices[lid + stride];
        if (before(ov, oi, best_values[lid], best_indices[lid])) {
          best_values[lid] = ov;
          best_indices[lid] = oi;
        }
      }
      workgroupBarrier();
    }
    prev_value = best_values[0];
    prev_index = best_indices[0];
    if (lid == 0u) {
      out_values[block * K + r] = prev_value;
      out_indices[block * K + r] = prev_index;
    }
    workgroupBarrier();
  }
}
