/**
 * Rotary position embedding in place on q and k (shaders/model/rope.wgsl), Hugging Face's
 * rotate-half convention, from the inverse frequencies of src/model/loading/config.ts
 * computeRopeInvFreq, for tokens at absolute positions start .. start + tokens - 1.
 */
import { bindGroup } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import {
  grid,
  modelPipeline,
  startBuffer,
  uniformBuffer,
  type ModelOp,
  type StartPosition,
} from './common';

const workgroupSize = 256;

export interface RopeParams {
  tokens: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  start: StartPosition;
  /**
   * Where the heads sit: floats between consecutive tokens' rows and the offset of token 0's
   * first head. Defaults: q [T][numHeads][d] and k [T][numKvHeads][d], each from element 0. For a
   * fused qkv buffer [T][(numHeads + 2 numKvHeads) d]: both strides that row, k offset numHeads d.
   */
  qStride?: number;
  qOffset?: number;
  kStride?: number;
  kOffset?: number;
}

/** Separate q and k buffers, or one fused qkv buffer holding both. */
export type RopeBuffers =
  | { q: GPUBuffer; k: GPUBuffer; invFreq: GPUBuffer }
  | {
      qkv: GPUBuffer;
      invFreq: GPUBuffer;
    };

export function createRope(ctx: GpuContext, params: RopeParams, buffers: RopeBuffers): ModelOp {
  const { tokens, numHeads, numKvHeads, headDim } = params;
  if (headDim % 2) throw new Error(`rope: odd head dim ${headDim}`);
  const fused = 'qkv' in buffers;
  const pipeline = modelPipeline(ctx, 'model/rope', { FUSED: fused });
  const half = headDim / 2;
  const uniforms = uniformBuffer(
    ctx.device,
    [
      tokens,
      numHeads,
      numKvHeads,
      half,
      params.qStride ?? numHeads * headDim,
      params.qOffset ?? 0,
      params.kStride ?? numKvHeads * headDim,
      params.kOffset ?? 0,
    ],
    [],
    'rope params',
  );
  const start = startBuffer(ctx.device, params.start);
  const bound = fused
    ? [uniforms, start.buffer, buffers.invFreq, buffers.qkv]
    : [uniforms, start.buffer, buffers.invFreq, buffers.q, buffers.k];
  const group = bindGroup(ctx.device, pipeline, bound);
  const workgroups = grid(
    ctx,
    Math.ceil((tokens * (numHeads + numKvHeads) * half) / workgroupSize),
  );
  return {
    record: (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...workgroups);
    },
    dispose: () => {
      uniforms.destroy();
      if (start.owned) start.buffer.destroy();
    },
  };
}

/**
 * float64 reference on contiguous x [tokens][heads][d], as transformers computes it: the angle
 * rounded to f32 (position * inv_freq in f32), then cos/sin of it.
 */
export function ropeReference(
  x: ArrayLike<number>,
  tokens: number,
  heads: number,
  headDim: number,
  invFreq: Float32Array,
  start: number,
): Float64Array {
  const out = Float64Array.from(x);
  const half = headDim / 2;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround((start + t) * invFreq[i]);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const a = x[base + i];
        const b = x[base + i + half];
        out[base + i] = a * c - b * s;
        out[base + i + half] = b * c + a * s;
      }
    }
  }
  return out;
}
