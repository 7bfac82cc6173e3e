// The f32 FMA rate this adapter reaches from WGSL: 8 independent FMA chains per invocation (enough
// to hide FMA latency), no memory traffic but one store per invocation so nothing is dead code.
@group(0) @binding(0) var<storage, read_write> sink: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let seed = f32(gid.x) * 1e-7;
  var a = vec4(seed, seed + 1.0, seed + 2.0, seed + 3.0);
  var b = a + 0.5;
  let m = vec4(0.999);
  let c = vec4(1e-3);
  for (var i = 0u; i < ITERATIONS; i++) {
    a = fma(a, m, c);
    b = fma(b, m, c);
  }
  sink[gid.x] = a + b;
}
