// One link of a chain of dependent dispatches: every invocation adds one to its cell, which the
// dispatch before wrote, so each dispatch waits for the previous one as a planner's output waits
// for its input. Timing chains of them gives the fixed cost a dependent dispatch adds whatever its
// work: the floor of a kernel made of several short dispatches (Quest's planner and decode).
@group(0) @binding(0) var<storage, read_write> cells: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  cells[gid.x] = cells[gid.x] + 1u;
}
