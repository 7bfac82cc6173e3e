// Inclusive prefix sum over a workgroup of WG invocations (Hillis-Steele in workgroup memory), for
// compactions that give each flagged invocation its place. Call from uniform control flow.
var<workgroup> scan: array<u32, WG>;

// Returns (inclusive sum up to lid, total of the workgroup).
fn prefix_sum(lid: u32, flag: u32) -> vec2<u32> {
  scan[lid] = flag;
  workgroupBarrier();
  for (var offset = 1u; offset < WG; offset *= 2u) {
    var add = 0u;
    if (lid >= offset) {
      add = scan[lid - offset];
    }
    workgroupBarrier();
    scan[lid] += add;
    workgroupBarrier();
  }
  let mine = scan[lid];
  let total = workgroupUniformLoad(&scan[WG - 1u]);
  workgroupBarrier();
  return vec2(mine, total);
}
