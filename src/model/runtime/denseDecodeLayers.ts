/**
 * Dense decode attention (shaders/attention/dense_decode.wgsl and its reduce pass, as
 * kernels/denseDecode.ts launches them) for every layer of the model, built once for the whole
 * generation: a decode step only writes its KV length into one 16-byte uniform buffer that all
 * layers share, and records the dispatches. No buffer or bind group is created per token.
 *
 * The split plan's pipeline knobs (lanes, rows, unroll, head chunk) do not depend on the KV length;
 * the split length and count do, and change with it as createDenseDecode would choose them. The
 * layers run one after another in the step's pass, so they share the partials too.
 */
import { bindGroup, createEmptyBuffer } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import { decodeSplitPlan, type DecodeParams } from '../../kernels/denseDecode';
import { groupSize, type AttentionShape, type PagedKvLayout } from '../../kernels/layout';
import type { AttentionCount } from './attention';

// The reduce pass's shape, as createDenseDecode uses it.
const reduceDimLanes = 8;
const reduceSplitLanes = 32;

export interface DenseDecodeLayerBuffers {
  /** [numHeads][headDim] f32: the step's query (shared by the layers). */
  q: GPUBuffer;
  /** [numHeads][headDim] f32 */
  out: GPUBuffer;
  pageTable: GPUBuffer;
  /** Per layer, its paged K and V pools. */
  pools: readonly { kPool: GPUBuffer; vPool: GPUBuffer }[];
}

export class DenseDecodeLayers {
  private readonly split: GPUComputePipeline;
  private readonly reduce: GPUComputePipeline;
  private readonly uniforms: GPUBuffer;
  private readonly partials: GPUBuffer[];
  private readonly splitGroups: GPUBindGroup[];
  private readonly reduceGroup: GPUBindGroup;
  private readonly uniformWords = new ArrayBuffer(16);
  private readonly dimChunks: number;
  private kvLen = 0;
  private numSplits = 0;

  constructor(
    private readonly ctx: GpuContext,
    private readonly shape: AttentionShape & { scale: number; kv: PagedKvLayout },
    maxKvLen: number,
    buffers: DenseDecodeLayerBuffers,
  ) {
    const { device } = ctx;
    const { numHeads, numKvHeads, headDim, kv } = shape;
    const longest = this.plan(maxKvLen);
    // The split length only grows with the KV length: the shortest one bounds the split count.
    const maxSplits = Math.ceil(maxKvLen / this.plan(1).tokensPerSplit);
    this.split = ctx.pipelines.get('attention/dense_decode', {
      HEAD_DIM: headDim,
      NUM_KV_HEADS: numKvHeads,
      PAGE_SIZE: kv.pageSize,
      KV_F16: kv.dtype === 'f16',
      GROUP: groupSize(shape),
      LANES: longest.lanes,
      VECS_PER_LANE: longest.vecsPerLane,
      ROWS: longest.rows,
      UNROLL: longest.unroll,
      HEAD_CHUNK: longest.headChunk,
      WORKGROUP_SIZE: longest.workgroupSize,
      SUBGROUPS: longest.subgroups,
    });
    this.reduce = ctx.pipelines.get('attention/dense_decode_reduce', {
      HEAD_DIM: headDim,
      DIM_LANES: reduceDimLanes,
      SPLIT_LANES: reduceSplitLanes,
    });
    this.uniforms = device.createBuffer({
      label: 'model dense decode params',
      size: 16,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    new Float32Array(this.uniformWords, 12, 1)[0] = shape.scale * Math.LOG2E;
    const partO = createEmptyBuffer(
      device,
      numHeads * maxSplits * headDim * 4,
      'model dense decode partial out',
    );
    const partMl = createEmptyBuffer(
      device,
      numHeads * maxSplits * 8,
      'model dense decode partial max/sum',
    );
    this.partials = [partO, partMl];
    this.splitGroups = buffers.pools.map(({ kPool, vPool }) =>
      bindGroup(device, this.split, [
        this.uniforms,
        buffers.q,
        kPool,
        vPool,
        buffers.pageTable,
        partO,
        partMl,
      ]),
    );
    this.reduceGroup = bindGroup(device, this.reduce, [this.uniforms, partO, partMl, buffers.out]);
    this.dimChunks = Math.ceil(headDim / 4 / reduceDimLanes);
  }

  private plan(kvLen: number) {
    const params: DecodeParams = { ...this.shape, kvLen };
    return decodeSplitPlan(this.ctx, params);
  }

  /** Sets the step's KV length (queue.writeBuffer: ordered before the step's submit). */
  prepare(kvLen: number): void {
    const { tokensPerSplit, numSplits } = this.plan(kvLen);
    new Uint32Array(this.uniformWords, 0, 3).set([kvLen, tokensPerSplit, numSplits]);
    this.ctx.device.queue.writeBuffer(this.uniforms, 0, this.uniformWords);
    this.kvLen = kvLen;
    this.numSplits = numSplits;
  }

  /** Layer `layer`'s split and reduce dispatches at the prepared KV length. */
  record(pass: GPUComputePassEncoder, layer: number): void {
    if (this.kvLen === 0) throw new Error('dense decode: record() before prepare()');
    pass.setPipeline(this.split);
    pass.setBindGroup(0, this.splitGroups[layer]);
    pass.dispatchWorkgroups(this.numSplits, this.shape.numKvHeads);
    pass.setPipeline(this.reduce);
    pass.setBindGroup(0, this.reduceGroup);
    pass.dispatchWorkgroups(this.dimChunks, this.shape.numHeads);
  }

  /** What one layer's dense decode touches at a KV length: every token, per KV head. */
  count(kvLen: number): AttentionCount {
    const heads = this.shape.numKvHeads;
    return {
      unit: 'tokens',
      touched: heads * kvLen,
      total: heads * kvLen,
      perHead: { touched: Array(heads).fill(kvLen), total: Array(heads).fill(kvLen) },
    };
  }

  dispose(): void {
    this.uniforms.destroy();
    this.partials.forEach((buffer) => buffer.destroy());
  }
}
