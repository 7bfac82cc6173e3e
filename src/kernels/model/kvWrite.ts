/**
 * Writes the K and V rows of new tokens into the paged KV cache pools (shaders/model/kv_write.wgsl;
 * layout in src/kernels/layout.ts), at absolute positions start .. start + tokens - 1 through the
 * sequence's page table. The CPU reference of the result is src/kernels/pagedKv.ts packPagedPool.
 * With `rope`, the same dispatch first applies the rotary embedding to q and k in place (reference:
 * rope.ts ropeReference) and writes the rotated k: no separate RoPE pass.
 */
import { bindGroup } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import type { PagedKvLayout } from '../layout';
import { grid, startBuffer, uniformBuffer, type ModelOp, type StartPosition } from './common';

const workgroupSize = 256;

export interface KvWriteParams {
  tokens: number;
  kv: PagedKvLayout;
  start: StartPosition;
  /**
   * Floats between consecutive tokens' rows of the sources and the offset of token 0's first KV
   * head. Defaults: k and v [T][numKvHeads][d] from element 0. For a fused qkv buffer: strides of
   * (numHeads + 2 numKvHeads) d, k offset numHeads d, v offset (numHeads + numKvHeads) d.
   */
  kStride?: number;
  kOffset?: number;
  vStride?: number;
  vOffset?: number;
  /** Rotate q and k first (buffers kv, q, invFreq); q is [tokens][numHeads][headDim]. */
  rope?: { numHeads: number };
}

interface PoolBuffers {
  /** Logical page -> physical page, u32. */
  pageTable: GPUBuffer;
  kPool: GPUBuffer;
  vPool: GPUBuffer;
}

export type KvWriteBuffers =
  | (PoolBuffers & {
      /** f32 sources (may be the same buffer). */
      k: GPUBuffer;
      v: GPUBuffer;
    })
  | (PoolBuffers & {
      /** With params.rope: the f32 K and V rows in one buffer (k rotated in place). */
      kv: GPUBuffer;
      /** [T] rows of numHeads heads, rotated in place. */
      q: GPUBuffer;
      /** [headDim / 2] f32 (config.ts computeRopeInvFreq). */
      invFreq: GPUBuffer;
    });

export function createKvWrite(
  ctx: GpuContext,
  params: KvWriteParams,
  buffers: KvWriteBuffers,
): ModelOp {
  const { tokens, kv, rope } = params;
  const f16 = kv.dtype === 'f16';
  if (f16 && kv.headDim % 2) throw new Error('kv write: f16 pools need an even head dim');
  const withRope = 'q' in buffers;
  if (Boolean(rope) !== withRope) throw new Error('kv write: rope and q, kv, invFreq go together');
  if (rope && kv.headDim % (f16 ? 4 : 2)) {
    throw new Error(
      `kv write: rope needs a head dim divisible by ${f16 ? 4 : 2}, got ${kv.headDim}`,
    );
  }
  const pipeline = ctx.pipelines.get('model/kv_write', {
    PAGE_SIZE: kv.pageSize,
    HEAD_DIM: kv.headDim,
    NUM_KV_HEADS: kv.numKvHeads,
    KV_F16: f16,
    ROPE: Boolean(rope),
  });
  const rowFloats = kv.numKvHeads * kv.headDim;
  const uniforms = uniformBuffer(
    ctx.device,
    [
      tokens,
      params.kStride ?? rowFloats,
      params.kOffset ?? 0,
      params.vStride ?? rowFloats,
      params.vOffset ?? 0,
      rope?.numHeads ?? 0,
    ],
    [],
    'kv write params',
  );
  const start = startBuffer(ctx.device, params.start);
  const { pageTable, kPool, vPool } = buffers;
  const bound = withRope
    ? [uniforms, start.buffer, pageTable, buffers.kv, kPool, vPool, buffers.q, buffers.invFreq]
    : [uniforms, start.buffer, pageTable, buffers.k, buffers.v, kPool, vPool];
  const group = bindGroup(ctx.device, pipeline, bound);
  // Pool words of K and V, plus (rope) the q pairs to rotate; k's pairs go with its pool words.
  const words = 2 * tokens * kv.numKvHeads * (f16 ? kv.headDim / 2 : kv.headDim);
  const qPairs = rope ? (tokens * rope.numHeads * kv.headDim) / 2 : 0;
  const kWords = rope ? tokens * kv.numKvHeads * (f16 ? kv.headDim / 4 : kv.headDim / 2) : 0;
  const invocations = rope ? qPairs + kWords + words / 2 : words;
  const workgroups = grid(ctx, Math.ceil(invocations / workgroupSize));
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
