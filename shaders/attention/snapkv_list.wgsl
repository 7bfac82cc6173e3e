// SnapKV kept lists: per KV head (one workgroup), the token indices whose bit is set, ascending, at
// kept[g * kept_stride ..], their count in lengths[g]. Bits: `bits` (key_words words per head);
// with ADA also bit g * num_keys + t of the flat bitset `flat_bits` (Ada-SnapKV's shared budget).
// Defines: WG, ADA.
struct Params {
  num_keys: u32,
  key_words: u32,
  kept_stride: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> kept: array<u32>;
@group(0) @binding(3) var<storage, read_write> lengths: array<u32>;
#if ADA
@group(0) @binding(4) var<storage, read> flat_bits: array<u32>;
#endif

#include "common/workgroup_scan"

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x;
  var before = 0u;
  for (var chunk = 0u; chunk < params.num_keys; chunk += WG) {
    let t = chunk + lid;
    var keep = 0u;
    if (t < params.num_keys) {
      keep = (bits[g * params.key_words + t / 32u] >> (t % 32u)) & 1u;
#if ADA
      let f = g * params.num_keys + t;
      keep |= (flat_bits[f / 32u] >> (f % 32u)) & 1u;
#endif
    }
    let sums = prefix_sum(lid, keep);
    let rank = before + sums.x - keep;
    if (keep == 1u && rank < params.kept_stride) {
      kept[g * params.kept_stride + rank] = t;
    }
    before += sums.y;
  }
  if (lid == 0u) {
    lengths[g] = before;
  }
}
