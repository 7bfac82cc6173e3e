// Quest page selection by counting ranks: the pages of quest_select.wgsl (per KV head, the `budget`
// complete pages with the highest bounds, ties to the lower page), listed by rank (highest bound
// first), then the current page: page_list[kvHead][0 .. list_len), page_count[kvHead] = list_len.
// Page i's rank is the number of pages that come before it in that order,
//   rank_i = #{j < i : key_j >= key_i} + #{j > i : key_j > key_i},
// and page i is kept, in slot rank_i, iff rank_i < budget: no threshold, scan or second pass.
// The work is all pairs, num_full^2 comparisons per KV head, but spread over
// num_full / (SLOTS * RUN) workgroups per head that wait on nothing, where the radix select runs
// one workgroup per head through dependent levels.
// Each workgroup ranks SLOTS * RUN consecutive pages: invocation (lane, slot) holds the keys of
// the RUN pages from slot * RUN on in registers and compares them with every LANES-th key of its
// head, staged TILE keys at a time in workgroup memory (invocations of one subgroup read few
// distinct words: broadcasts). So one workgroup-memory load feeds RUN comparisons (H100, 2,047
// pages: 25.6 us with RUN 1, 18.1 with 2, 15.2 with 8).
// Defines: SLOTS, LANES (WORKGROUP_SIZE = SLOTS * LANES), RUN, TILE.

#include "common/quest_selection"

const WORKGROUP_SIZE = SLOTS * LANES;

var<workgroup> keys: array<u32, TILE>;
var<workgroup> beaten_by: array<array<u32, RUN>, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv_head = wid.y;
  let n = params.num_full;
  let base = kv_head * n;
  let out = kv_head * params.list_len;
  let k = min(params.budget, n);
  let slot = lid % SLOTS;
  let lane = lid / SLOTS;
  let first_page = (wid.x * SLOTS + slot) * RUN;
  if (wid.x == 0u && lid == 0u) {
    page_list[out + k] = n; // the current page
    page_count[kv_head] = k + 1u;
  }
  // Every page kept, or none: no ranks needed (ascending when all are kept).
  if (k == n || k == 0u) {
    if (k == n && lane == 0u) {
      #unroll
      for (var r = 0u; r < RUN; r++) {
        if (first_page + r < n) {
          page_list[out + first_page + r] = first_page + r;
        }
      }
    }
    return;
  }
  var mine: array<u32, RUN>;
  var beaten: array<u32, RUN>;
  #unroll
  for (var r = 0u; r < RUN; r++) {
    mine[r] = order_key(bounds[base + min(first_page + r, n - 1u)]);
    beaten[r] = 0u;
  }
  for (var first = 0u; first < n; first += TILE) {
    let count = min(TILE, n - first);
    workgroupBarrier();
    for (var i = lid; i < count; i += WORKGROUP_SIZE) {
      keys[i] = order_key(bounds[base + first + i]);
    }
    workgroupBarrier();
    // Keys of lower pages win ties: >= below this invocation's pages, > above them, and among them
    // by page (a page never counts itself).
    let below = u32(clamp(i32(first_page) - i32(first), 0, i32(count)));
    let above = u32(clamp(i32(first_page + RUN) - i32(first), 0, i32(count)));
    var j = lane;
    for (; j < below; j += LANES) {
      let key = keys[j];
      #unroll
      for (var r = 0u; r < RUN; r++) {
        beaten[r] += u32(key >= mine[r]);
      }
    }
    for (; j < above; j += LANES) {
      let key = keys[j];
      #unroll
      for (var r = 0u; r < RUN; r++) {
        beaten[r] += u32(key > mine[r] || (key == mine[r] && first + j < first_page + r));
      }
    }
    for (; j < count; j += LANES) {
      let key = keys[j];
      #unroll
      for (var r = 0u; r < RUN; r++) {
        beaten[r] += u32(key > mine[r]);
      }
    }
  }
  beaten_by[lid] = beaten;
  workgroupBarrier();
  if (lane == 0u) {
    #unroll
    for (var r = 0u; r < RUN; r++) {
      var rank = 0u;
      for (var l = 0u; l < LANES; l++) {
        rank += beaten_by[l * SLOTS + slot][r];
      }
      if (first_page + r < n && rank < k) {
        page_list[out + rank] = first_page + r;
      }
    }
  }
}
