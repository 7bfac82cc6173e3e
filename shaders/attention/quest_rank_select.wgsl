// Quest page selection by counting ranks: the pages of quest_select.wgsl (per KV head, the `budget`
// complete pages with the highest bounds, ties to the lower page), listed by rank (highest bound
// first), then the current page: page_list[kvHead][0 .. list_len), page_count[kvHead] = list_len.
// Page i's rank is the number of pages that come before it in that order,
//   rank_i = #{j < i : key_j >= key_i} + #{j > i : key_j > key_i},
// and page i is kept, in slot rank_i, iff rank_i < budget: no threshold, scan or second pass.
// The work is all pairs, num_full^2 comparisons per KV head, but spread over num_full / PAGES
// workgroups per head that wait on nothing, where the radix select runs one workgroup per head
// through dependent levels.
// Each workgroup ranks PAGES consecutive pages with LANES invocations each; a lane compares its
// page against every LANES-th key of its head, staged TILE keys at a time in workgroup memory
// (invocations of one subgroup read PAGES-apart slots of few words: broadcasts).
// Defines: PAGES, LANES (WORKGROUP_SIZE = PAGES * LANES), TILE.

#include "common/quest_selection"

const WORKGROUP_SIZE = PAGES * LANES;

var<workgroup> keys: array<u32, TILE>;
var<workgroup> beaten_by: array<u32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv_head = wid.y;
  let n = params.num_full;
  let base = kv_head * n;
  let out = kv_head * params.list_len;
  let k = min(params.budget, n);
  let slot = lid % PAGES;
  let lane = lid / PAGES;
  let page = wid.x * PAGES + slot;
  if (wid.x == 0u && lid == 0u) {
    page_list[out + k] = n; // the current page
    page_count[kv_head] = k + 1u;
  }
  // Every page kept, or none: no ranks needed (ascending when all are kept).
  if (k == n || k == 0u) {
    if (k == n && lane == 0u && page < n) {
      page_list[out + page] = page;
    }
    return;
  }
  let mine = order_key(bounds[base + min(page, n - 1u)]);
  var beaten = 0u;
  for (var first = 0u; first < n; first += TILE) {
    let count = min(TILE, n - first);
    workgroupBarrier();
    for (var i = lid; i < count; i += WORKGROUP_SIZE) {
      keys[i] = order_key(bounds[base + first + i]);
    }
    workgroupBarrier();
    // Keys of lower pages win ties: >= below the page, > from it on (the page itself never counts).
    let split = clamp(i32(page) - i32(first), 0, i32(count));
    var j = lane;
    for (; i32(j) < split; j += LANES) {
      beaten += u32(keys[j] >= mine);
    }
    for (; j < count; j += LANES) {
      beaten += u32(keys[j] > mine);
    }
  }
  beaten_by[lid] = beaten;
  workgroupBarrier();
  if (lane == 0u && page < n) {
    var rank = 0u;
    for (var l = 0u; l < LANES; l++) {
      rank += beaten_by[l * PAGES + slot];
    }
    if (rank < k) {
      page_list[out + rank] = page;
    }
  }
}
