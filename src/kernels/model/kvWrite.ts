/**
 * Writes the K and V rows of new tokens into the paged KV cache pools (shaders/model/kv_write.wgsl;
 * layout in src/kernels/layout.ts), at absolute positions start .. start + tokens - 1 through the
 * sequence's page table. The CPU reference of the result is src/kernels/pagedKv.ts packPagedPool.
 */
import { bindGroup } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import type { PagedKvLayout } from '../layout';
import {
  grid,
  modelPipeline,
  startBuffer,
  uniformBuffer,
  type ModelOp,
  type StartPosition,
} from './common';

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
}

export interface KvWriteBuffers {
  /** f32 sources (may be the same buffer). */
  k: GPUBuffer;
  v: GPUBuffer;
  /** Logical page -> physical page, u32. */
  pageTable: GPUBuffer;
  kPool: GPUBuffer;
  vPool: GPUBuffer;
}

export function createKvWrite(
  ctx: GpuContext,
  params: KvWriteParams,
  buffers: KvWriteBuffers,
): ModelOp {
  const { tokens, kv } = params;
  const f16 = kv.dtype === 'f16';
  if (f16 && kv.headDim % 2) throw new Error('kv write: f16 pools need an even head dim');
  const pipeline = modelPipeline(ctx, 'model/kv_write', {
    PAGE_SIZE: kv.pageSize,
    HEAD_DIM: kv.headDim,
    NUM_KV_HEADS: kv.numKvHeads,
    KV_F16: f16,
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
    ],
    [],
    'kv write params',
  );
  const start = startBuffer(ctx.device, params.start);
  const group = bindGroup(ctx.device, pipeline, [
    uniforms,
    start.buffer,
    buffers.pageTable,
    buffers.k,
    buffers.v,
    buffers.kPool,
    buffers.vPool,
  ]);
  const words = 2 * tokens * kv.numKvHeads * (f16 ? kv.headDim / 2 : kv.headDim);
  const workgroups = grid(ctx, Math.ceil(words / workgroupSize));
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
