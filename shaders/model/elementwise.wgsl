// Residual add a += b over 16-byte vectors, one invocation per vector: a pure streaming pass, so
// the only concern is coalescing. (The projections that feed the residual stream can instead
// accumulate into it directly: linear.ts `accumulate`.)
#include "common/model_grid"

struct Params {
  vecs: u32,
}

const WORKGROUP_SIZE = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_workgroup(wid, groups) * WORKGROUP_SIZE + lid;
  if (i < params.vecs) {
    a[i] += b[i];
  }
}
