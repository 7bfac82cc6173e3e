/**
 * RMSNorm (Llama, Qwen2) and LayerNorm (GPT-2) over token rows, shaders/model/norm.wgsl: out[t] =
 * norm(x[t]) with x left as it is.
 */
import { bindGroup } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import { grid, uniformBuffer, type ModelOp } from './common';

export type NormKind = 'rmsnorm' | 'layernorm';

export interface NormParams {
  kind: NormKind;
  tokens: number;
  /** Row length, a multiple of 4. */
  features: number;
  eps: number;
}

export interface NormBuffers {
  /** [tokens][features] f32 */
  x: GPUBuffer;
  /** [features] f32 */
  weight: GPUBuffer;
  /** [features] f32, LayerNorm only. */
  bias?: GPUBuffer;
  /** [tokens][features] f32 */
  out: GPUBuffer;
}

export function createNorm(ctx: GpuContext, params: NormParams, buffers: NormBuffers): ModelOp {
  const { kind, tokens, features, eps } = params;
  if (features % 4) throw new Error(`norm: features must be a multiple of 4, got ${features}`);
  const layerNorm = kind === 'layernorm';
  if (layerNorm && !buffers.bias) throw new Error('layernorm needs a bias');
  const pipeline = ctx.pipelines.get('model/norm', { LAYER_NORM: layerNorm });
  const uniforms = uniformBuffer(ctx.device, [features / 4, eps], [1], 'norm params');
  const bound = [uniforms, buffers.x, buffers.weight];
  if (layerNorm && buffers.bias) bound.push(buffers.bias);
  bound.push(buffers.out);
  const group = bindGroup(ctx.device, pipeline, bound);
  const workgroups = grid(ctx, tokens);
  return {
    record: (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...workgroups);
    },
    dispose: () => uniforms.destroy(),
  };
}

export interface NormReferenceInput extends NormParams {
  x: ArrayLike<number>;
  weight: ArrayLike<number>;
  bias?: ArrayLike<number>;
}

/** float64 reference: x * rsqrt(mean(x^2) + eps) * w, or (x - mean) * rsqrt(var + eps) * w + b. */
export function normReference(input: NormReferenceInput): Float64Array {
  const { kind, tokens, features, eps, x, weight, bias } = input;
  const out = new Float64Array(tokens * features);
  for (let t = 0; t < tokens; t++) {
    const row = t * features;
    let mean = 0;
    if (kind === 'layernorm') {
      for (let i = 0; i < features; i++) mean += x[row + i];
      mean /= features;
    }
    let squares = 0;
    for (let i = 0; i < features; i++) squares += (x[row + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(squares / features + eps);
    for (let i = 0; i < features; i++) {
      const shift = kind === 'layernorm' && bias ? bias[i] : 0;
      out[row + i] = (x[row + i] - mean) * inv * weight[i] + shift;
    }
  }
  return out;
}
