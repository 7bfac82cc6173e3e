/**
 * MLP activations (shaders/model/activation.wgsl): SwiGLU out = silu(gate) * up, from separate gate
 * and up buffers or from one fused [T][2I] gate_up buffer; GELU in place, gelu_new (tanh) or exact
 * (erf). Plus the float64 references, which linear.ts also uses for its fused epilogue.
 */
import { bindGroup } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import { grid, uniformBuffer, type ModelOp } from './common';

/** The activations a linear layer's epilogue (or the in-place GELU kernel) can apply. */
export type LinearActivation = 'none' | 'gelu_tanh' | 'gelu';

const workgroupSize = 256;

export interface SwiGluParams {
  tokens: number;
  /** intermediate_size */
  features: number;
}

/** gate and up [T][I], or gateUp [T][2I] (gate in the first half of each row); out [T][I]. */
export type SwiGluBuffers =
  { gate: GPUBuffer; up: GPUBuffer; out: GPUBuffer } | { gateUp: GPUBuffer; out: GPUBuffer };

export function createSwiGlu(
  ctx: GpuContext,
  params: SwiGluParams,
  buffers: SwiGluBuffers,
): ModelOp {
  const count = params.tokens * params.features;
  const fused = 'gateUp' in buffers;
  const pipeline = ctx.pipelines.get('model/activation', {
    GATED: true,
    FUSED_GATE_UP: fused,
    ACTIVATION: 0,
  });
  const uniforms = uniformBuffer(ctx.device, [count, params.features], [], 'swiglu params');
  const bound = fused
    ? [uniforms, buffers.gateUp, buffers.out]
    : [uniforms, buffers.gate, buffers.up, buffers.out];
  const group = bindGroup(ctx.device, pipeline, bound);
  const workgroups = grid(ctx, Math.ceil(count / workgroupSize));
  return {
    record: (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...workgroups);
    },
    dispose: () => uniforms.destroy(),
  };
}

/** x = gelu(x) in place over `count` floats. */
export function createGelu(
  ctx: GpuContext,
  params: { count: number; kind: 'gelu_tanh' | 'gelu' },
  buffers: { x: GPUBuffer },
): ModelOp {
  const pipeline = ctx.pipelines.get('model/activation', {
    GATED: false,
    FUSED_GATE_UP: false,
    ACTIVATION: params.kind === 'gelu_tanh' ? 1 : 2,
  });
  const uniforms = uniformBuffer(ctx.device, [params.count, 0], [], 'gelu params');
  const group = bindGroup(ctx.device, pipeline, [uniforms, buffers.x]);
  const workgroups = grid(ctx, Math.ceil(params.count / workgroupSize));
  return {
    record: (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...workgroups);
    },
    dispose: () => uniforms.destroy(),
  };
}

/** erf in float64: Maclaurin series for |x| < 3, continued fraction of erfc beyond. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 80; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  let fraction = a;
  for (let k = 60; k >= 1; k--) fraction = a + k / 2 / fraction;
  return Math.sign(x) * (1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * fraction));
}

export function siluReference(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function activationReference(x: number, activation: LinearActivation): number {
  if (activation === 'gelu_tanh') {
    return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  }
  if (activation === 'gelu') return 0.5 * x * (1 + erf(x / Math.SQRT2));
  return x;
}

/** SwiGLU reference from separate gate and up rows. */
export function swiGluReference(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: gate.length }, (_, i) => siluReference(gate[i]) * up[i]);
}
