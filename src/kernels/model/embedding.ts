/**
 * Token embedding lookup (shaders/model/embedding.wgsl): out[t] = table[ids[t]], plus GPT-2's
 * learned position rows positions[start + t] when given. The table comes as row chunks (the same
 * chunks can serve a tied LM head), f32 or f16 pairs; the position table has the same dtype.
 */
import { bindGroup } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import {
  grid,
  rowWords,
  startBuffer,
  uniformBuffer,
  type ModelOp,
  type StartPosition,
  type WeightChunk,
  type WeightDtype,
} from './common';

const workgroupSize = 256;

export interface EmbeddingParams {
  tokens: number;
  features: number;
  dtype: WeightDtype;
  /** Position of token 0, for the position table. */
  start?: StartPosition;
}

export interface EmbeddingBuffers {
  /** [tokens] u32 token ids. */
  ids: GPUBuffer;
  table: readonly WeightChunk[];
  /** [maxPositions][features], GPT-2's wpe. */
  positions?: GPUBuffer;
  /** [tokens][features] f32 */
  out: GPUBuffer;
}

export function createEmbedding(
  ctx: GpuContext,
  params: EmbeddingParams,
  buffers: EmbeddingBuffers,
): ModelOp {
  const { tokens, features, dtype } = params;
  const words = rowWords(features, dtype);
  const positions = buffers.positions;
  const pipeline = ctx.pipelines.get('model/embedding', {
    TABLE_F16: dtype === 'f16',
    POSITIONS: Boolean(positions),
  });
  const start = positions ? startBuffer(ctx.device, params.start ?? 0) : null;
  const dispatches = buffers.table.map((chunk) => {
    const uniforms = uniformBuffer(
      ctx.device,
      [tokens, words, chunk.rowStart, chunk.rows],
      [],
      'embedding params',
    );
    const bound = [uniforms, buffers.ids, chunk.buffer, buffers.out];
    if (positions && start) bound.push(start.buffer, positions);
    return { uniforms, group: bindGroup(ctx.device, pipeline, bound) };
  });
  const workgroups = grid(ctx, Math.ceil((tokens * words) / workgroupSize));
  return {
    record: (pass) => {
      pass.setPipeline(pipeline);
      for (const { group } of dispatches) {
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(...workgroups);
      }
    },
    dispose: () => {
      dispatches.forEach(({ uniforms }) => uniforms.destroy());
      if (start?.owned) start.buffer.destroy();
    },
  };
}

/** Reference: rows of the (already f16-rounded, where relevant) tables, in float64. */
export function embeddingReference(
  ids: ArrayLike<number>,
  table: ArrayLike<number>,
  features: number,
  positions?: { table: ArrayLike<number>; start: number },
): Float64Array {
  const out = new Float64Array(ids.length * features);
  for (let t = 0; t < ids.length; t++) {
    for (let i = 0; i < features; i++) {
      const pos = positions ? positions.table[(positions.start + t) * features + i] : 0;
      out[t * features + i] = table[ids[t] * features + i] + pos;
    }
  }
  return out;
}
