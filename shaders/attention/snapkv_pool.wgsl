// SnapKV smoothing (src/methods/reference/snapKV.ts pooledWithForced): avg_pool1d of each KV head's
// importance (kernel `kernel`, odd, stride 1, zero padding kernel / 2 counted in the mean), then
// the last `local_window` and first `prefix_tokens` keys forced to 3e38 (the reference's +Infinity;
// WGSL has no infinite constant): above any pooled score, which is at most the window length, so
// planner_select keeps them first, ties to the lower index, as topKIndices does. Invocation (x:
// key, y: KV head). Define: WG.
struct Params {
  num_keys: u32,
  kernel: u32,
  local_window: u32,
  prefix_tokens: u32,
}

const FORCED = 3.0e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> importance: array<f32>;
@group(0) @binding(2) var<storage, read_write> pooled: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  let n = params.num_keys;
  if (t >= n) {
    return;
  }
  let base = gid.y * n;
  let half = (params.kernel - 1u) / 2u;
  var sum = 0.0;
  for (var u = select(0u, t - half, t >= half); u <= min(n - 1u, t + half); u++) {
    sum += importance[base + u];
  }
  var value = sum / f32(params.kernel);
  if (t + params.local_window >= n || t < params.prefix_tokens) {
    value = FORCED;
  }
  pooled[base + t] = value;
}
