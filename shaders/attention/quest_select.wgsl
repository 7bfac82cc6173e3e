// Quest page selection: per KV head, the `budget` complete pages with the highest bounds (ties to
// the lower page, as topKIndices on the CPU), listed ascending, then the current page:
//   page_list[kvHead][0 .. list_len), page_count[kvHead] = pages listed (= pages decode reads).
// One workgroup per KV head. A page is kept iff its rank (pages that beat it) is < budget; ranks
// need no sort and no data-dependent control flow. The kept flags of each chunk of pages are
// compacted with a workgroup prefix sum, which keeps the list ascending.
// O(num_full^2) compares per head: ~4M at 32K tokens, well under the decode pass itself.

struct Params {
  num_full: u32,
  budget: u32,
  list_len: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> bounds: array<f32>;
@group(0) @binding(2) var<storage, read_write> page_list: array<u32>;
@group(0) @binding(3) var<storage, read_write> page_count: array<u32>;

var<workgroup> scan: array<u32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv_head = wid.x;
  let base = kv_head * params.num_full;
  let out = kv_head * params.list_len;
  var written = 0u;
  for (var chunk = 0u; chunk < params.num_full; chunk += WORKGROUP_SIZE) {
    let page = chunk + lid;
    var kept = 0u;
    if (page < params.num_full) {
      let b = bounds[base + page];
      var rank = 0u;
      for (var j = 0u; j < params.num_full && rank < params.budget; j++) {
        let c = bounds[base + j];
        rank += u32(c > b || (c == b && j < page));
      }
      kept = u32(rank < params.budget);
    }
    // Inclusive prefix sum of the kept flags (Hillis-Steele).
    scan[lid] = kept;
    workgroupBarrier();
    for (var offset = 1u; offset < WORKGROUP_SIZE; offset <<= 1u) {
      let left = select(0u, scan[max(lid, offset) - offset], lid >= offset);
      workgroupBarrier();
      scan[lid] += left;
      workgroupBarrier();
    }
    if (kept == 1u) {
      page_list[out + written + scan[lid] - 1u] = page;
    }
    written += scan[WORKGROUP_SIZE - 1u];
    workgroupBarrier();
  }
  if (lid == 0u) {
    page_list[out + written] = params.num_full; // the current page
    page_count[kv_head] = written + 1u;
  }
}
