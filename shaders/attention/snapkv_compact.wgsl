// SnapKV compaction of the paged KV cache (layout.ts): slot j of KV head g of the new pools takes
// token kept[g * kept_stride + j] of the source pools for j < lengths[g], then the tokens generated
// since the prompt (prompt_len .. prompt_len + tail - 1, all kept), then zeros up to dst_stride
// (the padding of heads that keep fewer tokens: Ada-SnapKV). Rows are copied as raw 32-bit words,
// so f32 and f16-pair pools alike. out_lengths[g] = lengths[g] + tail. Workgroup (x: row words /
// WG, y: slot j, z: KV head). Defines: HEAD_DIM, NUM_KV_HEADS, PAGE_SIZE, KV_F16, WG.
struct Params {
  kept_stride: u32,
  prompt_len: u32,
  tail: u32,
  dst_stride: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> kept: array<u32>;
@group(0) @binding(2) var<storage, read> lengths: array<u32>;
@group(0) @binding(3) var<storage, read> src_k: array<u32>;
@group(0) @binding(4) var<storage, read> src_v: array<u32>;
@group(0) @binding(5) var<storage, read> src_pages: array<u32>;
@group(0) @binding(6) var<storage, read_write> dst_k: array<u32>;
@group(0) @binding(7) var<storage, read_write> dst_v: array<u32>;
@group(0) @binding(8) var<storage, read> dst_pages: array<u32>;
@group(0) @binding(9) var<storage, read_write> out_lengths: array<u32>;

#include "common/paged_kv"

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.x;
  let j = gid.y;
  let g = gid.z;
  let count = lengths[g];
  if (w == 0u && j == 0u) {
    out_lengths[g] = count + params.tail;
  }
  if (w >= KV_ROW_WORDS || j >= params.dst_stride) {
    return;
  }
  let dst = kv_row_word(dst_pages[j / PAGE_SIZE], g, j % PAGE_SIZE) + w;
  if (j >= count + params.tail) {
    dst_k[dst] = 0u;
    dst_v[dst] = 0u;
    return;
  }
  var t = params.prompt_len + j - count;
  if (j < count) {
    t = kept[g * params.kept_stride + j];
  }
  let src = kv_row_word(src_pages[t / PAGE_SIZE], g, t % PAGE_SIZE) + w;
  dst_k[dst] = src_k[src];
  dst_v[dst] = src_v[src];
}
