// Linear layer for many tokens (prefill): out[t][out_col + o] (=|+=) act(sum_i x[t][i] w[o][i] + b)
// with w in nn.Linear's [out][in] layout, f32 or f16 pairs packed in u32 (W_F16).
//
// Tiling: a workgroup of 16 x 16 invocations computes a 64-token x 64-output tile; each invocation
// owns a 4 x 4 register tile (4 tokens x 4 outputs, as four vec4 accumulators). The K dimension is
// walked 16 at a time: the workgroup stages a 64 x 16 tile of x and one of w in workgroup memory,
// transposed to [k][row] so the inner loop reads one vec4 of tokens and one vec4 of outputs per k
// and does 16 FMAs with them. Both operands are K-contiguous in memory, so the staging loads are
// 16-byte vectors along K (4 invocations per row): in_features must be a multiple of 4. WebGPU has
// no tensor cores, so this f32 FMA tiling is what bounds prefill; the register tile gives 8 FMAs per
// workgroup-memory load, and the 64 x 64 tile reuses every staged value 64 times.
//
// Tokens past `tokens`, outputs past `out_rows` and K past `in_features` load zeros and are not
// stored, so any shape runs. One dispatch covers one chunk of weight rows (see linear.ts); the
// epilogue (bias, activation, accumulate, SPLIT_OUT) is model/linear_store.wgsl.
#include "common/model_activation"
#include "model/linear_store"

struct Params {
  tokens: u32,
  out_rows: u32,
  in_features: u32,
  out_stride: u32,
  out_col: u32,
  x_offset: u32,
  split_col: u32,
  out2_stride: u32,
}

const TILE = 64u;
const TK = 16u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#if W_F16
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>;
#else
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
#endif
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#if SPLIT_OUT
@group(0) @binding(OUT2_BINDING) var<storage, read_write> out2: array<f32>;
#endif
#if HAS_BIAS
@group(0) @binding(BIAS_BINDING) var<storage, read> bias: array<f32>;
#endif

// [k][row / 4] of the staged tiles: one vec4 holds 4 consecutive tokens (or outputs) at one k.
var<workgroup> x_tile: array<vec4<f32>, TK * TILE / 4u>;
var<workgroup> w_tile: array<vec4<f32>, TK * TILE / 4u>;

fn load_w(row: u32, k: u32) -> vec4<f32> {
#if W_F16
  let raw = w[(row * params.in_features + k) / 4u];
  return vec4(unpack2x16float(raw.x), unpack2x16float(raw.y));
#else
  return w[(row * params.in_features + k) / 4u];
#endif
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tok0 = wid.y * TILE;
  let out0 = wid.x * TILE;
  let tx = lid % 16u;
  let ty = lid / 16u;
  // Staging: invocation lid loads row lid / 4, k-quad lid % 4 of both tiles.
  let load_row = lid / 4u;
  let load_k = (lid % 4u) * 4u;
  let x_row = min(tok0 + load_row, params.tokens - 1u);
  let w_row = min(out0 + load_row, params.out_rows - 1u);
  let x_valid = tok0 + load_row < params.tokens;
  let w_valid = out0 + load_row < params.out_rows;
  let x_base = params.x_offset / 4u + x_row * (params.in_features / 4u);

  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < params.in_features; k0 += TK) {
    let k = k0 + load_k;
    let k_valid = k < params.in_features;
    let kc = min(k, params.in_features - 4u);
    let xv = select(vec4(0.0), x[x_base + kc / 4u], x_valid && k_valid);
    let wv = select(vec4(0.0), load_w(w_row, kc), w_valid && k_valid);
    for (var c = 0u; c < 4u; c++) {
      x_tile[(load_k + c) * (TILE / 4u) + load_row / 4u][load_row % 4u] = xv[c];
      w_tile[(load_k + c) * (TILE / 4u) + load_row / 4u][load_row % 4u] = wv[c];
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let a = x_tile[kk * (TILE / 4u) + ty];
      let b = w_tile[kk * (TILE / 4u) + tx];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let t = tok0 + ty * 4u + i;
    if (t >= params.tokens) {
      break;
    }
    for (var j = 0u; j < 4u; j++) {
      let o = out0 + tx * 4u + j;
      if (o >= params.out_rows) {
        break;
      }
      store_output(t, params.out_col + o, acc[i][j]);
    }
  }
}
