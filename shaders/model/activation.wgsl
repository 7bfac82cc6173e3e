// Activations of the MLP, one invocation per output element (memory-bound, coalesced):
//   GATED:  out[t][j] = silu(gate[t][j]) * up[t][j] (SwiGLU of Llama/Qwen2), with gate and up either
//           separate [T][I] buffers or, with FUSED_GATE_UP, the two halves of one [T][2I] row (the
//           output of one linear over the concatenated gate_proj and up_proj weights);
//   else:   x = act(x) in place, act chosen by ACTIVATION (1: gelu_tanh, 2: gelu_erf). GPT-2's
//           gelu_new is better fused into its linear's epilogue (linear.ts `activation`).
#include "common/model_activation"
#include "common/model_grid"

struct Params {
  count: u32,
  inter: u32,
}

const WORKGROUP_SIZE = 256u;

@group(0) @binding(0) var<uniform> params: Params;
#if GATED
#if FUSED_GATE_UP
@group(0) @binding(1) var<storage, read> gate_up: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif
#else
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
#endif

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = flat_workgroup(wid, groups) * WORKGROUP_SIZE + lid;
  if (j >= params.count) {
    return;
  }
#if GATED
#if FUSED_GATE_UP
  let row = (j / params.inter) * 2u * params.inter + j % params.inter;
  out[j] = silu(gate_up[row]) * gate_up[row + params.inter];
#else
  out[j] = silu(gate[j]) * up[j];
#endif
#else
  x[j] = epilogue_activation(x[j]);
#endif
}
