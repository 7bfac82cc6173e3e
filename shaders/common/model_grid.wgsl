// Flat index of an invocation in a 1-D problem dispatched as a 2-D grid of workgroups (the x
// dimension is capped at maxComputeWorkgroupsPerDimension, so large problems spill into y).
fn flat_workgroup(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
  return wid.y * groups.x + wid.x;
}
