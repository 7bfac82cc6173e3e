// Ada-SnapKV, step 2 input: the pooled scores of all KV heads as one flat row (head-major), with
// the entries each head already took (its per-head top min_per_head, bitset `taken`, key_words
// words per head) set to -3e38 (the reference's -Infinity; pooled scores are >= 0), so one top-k
// over the row hands the remaining budget to the highest scores of all heads (ties: lower head,
// lower token). Invocation (x: key, y: KV head). Define: WG.
struct Params {
  num_keys: u32,
  key_words: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pooled: array<f32>;
@group(0) @binding(2) var<storage, read> taken: array<u32>;
@group(0) @binding(3) var<storage, read_write> flat: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  let g = gid.y;
  if (t >= params.num_keys) {
    return;
  }
  let i = g * params.num_keys + t;
  let bit = (taken[g * params.key_words + t / 32u] >> (t % 32u)) & 1u;
  flat[i] = select(pooled[i], -3.0e38, bit == 1u);
}
