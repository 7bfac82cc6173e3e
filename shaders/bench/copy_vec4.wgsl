// Copies vec4<f32> words: the read + write bandwidth ceiling the benchmark compares kernels with.
// Grid-stride loop so any length runs with a bounded number of workgroups.
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let stride = groups.x * WORKGROUP_SIZE;
  let n = arrayLength(&src);
  for (var i = gid.x; i < n; i += stride) {
    dst[i] = src[i];
  }
}
