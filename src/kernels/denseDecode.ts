/**
 * Dense decode attention (one new query per head) over the paged KV cache: flash decoding in two
 * passes, shaders/attention/dense_decode.wgsl (split) and dense_decode_reduce.wgsl (reduce).
 */
import {
  bindGroup,
  createEmptyBuffer,
  createStorageBuffer,
  createUniformBuffer,
  readFloat32,
} from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import type { RecordDispatches } from '../gpu/timer';
import { groupSize, type AttentionShape, type PagedKvLayout } from './layout';
import { packPagedPool, pagesFor } from './pagedKv';

export interface DecodeParams extends AttentionShape {
  kvLen: number;
  scale: number;
  kv: PagedKvLayout;
}

export interface DecodeBuffers {
  /** [head][dim] f32 */
  q: GPUBuffer;
  kPool: GPUBuffer;
  vPool: GPUBuffer;
  pageTable: GPUBuffer;
  /** [head][dim] f32 */
  out: GPUBuffer;
}

export interface DecodeSplitPlan {
  tokensPerSplit: number;
  numSplits: number;
  /** Split-pass workgroups: numSplits x numKvHeads. */
  workgroups: number;
  workgroupSize: number;
  /** Invocations that share one token row, each loading vecsPerLane 16-byte vectors of it. */
  lanes: number;
  vecsPerLane: number;
  /** Token rows in flight per workgroup (workgroupSize / lanes), each taking `unroll` per step. */
  rows: number;
  unroll: number;
  /** Query heads merged per pass through workgroup memory at the end of the split pass. */
  headChunk: number;
  subgroups: boolean;
}

/** Knobs the benchmark may vary; the defaults are what the plan uses. */
export interface DecodeTuning {
  /**
   * Workgroups to aim for. On the H100 (npm run bench -- --tune, docs/PERFORMANCE.md) fewer, longer
   * splits won: 512 ran f16 decode at 32K in 0.073 ms, 2048 in 0.084 ms.
   */
  targetWorkgroups: number;
  /** Invocations per token row; by default as many as hold the row in 16-byte loads, up to 16. */
  lanes?: number;
  /**
   * Tokens each row loads before using them: the bytes in flight per register of state. With
   * subgroups 8 (H100, f16 at 32K: 0.064 ms against 0.073 ms for 4); without, the workgroup-memory
   * reduction needs UNROLL x GROUP floats per invocation, so 2.
   */
  unroll?: number;
}

export const defaultDecodeTuning: DecodeTuning = { targetWorkgroups: 512 };
const minTokensPerSplit = 64;
const maxTokensPerSplit = 512;
const dimsPerLane = 8;
const maxLanes = 16;
const targetWorkgroupSize = 128;
const maxRows = 16;
const workgroupStorageBudget = 20480;
const reduceDimLanes = 8;
const reduceSplitLanes = 32;

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

function validate(params: DecodeParams): number {
  const { kv, headDim, numKvHeads, kvLen } = params;
  const group = groupSize(params);
  if (kv.headDim !== headDim || kv.numKvHeads !== numKvHeads) {
    throw new Error('KV layout does not match the attention shape');
  }
  if (headDim % 8 !== 0) throw new Error(`dense decode needs headDim % 8 == 0, got ${headDim}`);
  if (!Number.isInteger(kvLen) || kvLen < 1) throw new Error(`kvLen must be >= 1, got ${kvLen}`);
  return group;
}

/** How the KV length is split over workgroups and how a workgroup maps onto a token row. */
export function decodeSplitPlan(
  ctx: GpuContext,
  params: DecodeParams,
  tuning: DecodeTuning = defaultDecodeTuning,
): DecodeSplitPlan {
  const group = validate(params);
  const { headDim, numKvHeads, kvLen, kv } = params;
  const subgroups = ctx.caps.subgroups;
  // A row's lanes must sit in one subgroup for the shuffles; WebGPU guarantees at least 4.
  const subgroupMin = ctx.device.adapterInfo?.subgroupMinSize ?? 4;
  const vecsPerRow = headDim / (kv.dtype === 'f16' ? 8 : 4);
  let lanes = tuning.lanes ?? Math.min(nextPow2(headDim / dimsPerLane), maxLanes);
  if (subgroups) lanes = Math.min(lanes, subgroupMin);
  const vecsPerLane = Math.ceil(vecsPerRow / lanes);
  const rows = Math.min(targetWorkgroupSize / lanes, maxRows);
  const workgroupSize = rows * lanes;

  const storageLimit = Math.min(workgroupStorageBudget, ctx.caps.maxWorkgroupStorageBytes);
  const unroll = tuning.unroll ?? (subgroups ? 8 : 2);
  const fixedBytes = rows * group * 8 + (subgroups ? 0 : workgroupSize * unroll * group * 4);
  const headChunk = Math.min(group, Math.floor((storageLimit - fixedBytes) / (rows * headDim * 4)));
  if (headChunk < 1)
    throw new Error(`dense decode: group size ${group} needs too much workgroup memory`);

  const perSplit = Math.ceil((kvLen * numKvHeads) / tuning.targetWorkgroups);
  const maxSplits = ctx.caps.maxComputeWorkgroupsPerDimension;
  let tokensPerSplit = Math.min(Math.max(nextPow2(perSplit), minTokensPerSplit), maxTokensPerSplit);
  tokensPerSplit = Math.max(tokensPerSplit, nextPow2(Math.ceil(kvLen / maxSplits)));
  const numSplits = Math.ceil(kvLen / tokensPerSplit);
  return {
    tokensPerSplit,
    numSplits,
    workgroups: numSplits * numKvHeads,
    workgroupSize,
    lanes,
    vecsPerLane,
    rows,
    unroll,
    headChunk,
    subgroups,
  };
}

/** The defines of dense_decode.wgsl's split pass for a plan (BLASST adds its own on top). */
export function decodeSplitDefines(params: DecodeParams, plan: DecodeSplitPlan) {
  return {
    HEAD_DIM: params.headDim,
    NUM_KV_HEADS: params.numKvHeads,
    PAGE_SIZE: params.kv.pageSize,
    KV_F16: params.kv.dtype === 'f16',
    GROUP: groupSize(params),
    LANES: plan.lanes,
    VECS_PER_LANE: plan.vecsPerLane,
    ROWS: plan.rows,
    UNROLL: plan.unroll,
    HEAD_CHUNK: plan.headChunk,
    WORKGROUP_SIZE: plan.workgroupSize,
    SUBGROUPS: plan.subgroups,
  };
}

/** The defines of dense_decode_reduce.wgsl (and the workgroups it takes: `reduceDimChunks`). */
export function decodeReduceDefines(headDim: number) {
  return { HEAD_DIM: headDim, DIM_LANES: reduceDimLanes, SPLIT_LANES: reduceSplitLanes };
}

/** Reduce-pass workgroups along the head dimension. */
export const reduceDimChunks = (headDim: number) => Math.ceil(headDim / 4 / reduceDimLanes);

export interface DenseDecode {
  record: RecordDispatches;
  /** The partials and uniforms this instance allocated. */
  scratch: GPUBuffer[];
}

/**
 * Sparse decode (Quest): read only the logical pages page_list[kvHead][0 .. listLen), ascending,
 * the last of them the current (possibly partial) one; params.kvLen then counts listed tokens.
 */
export interface DecodePageList {
  buffer: GPUBuffer;
  listLen: number;
}

/** Cache tokens [start, start + length) that a KV head does not read. */
export interface DecodeTokenGap {
  start: number;
  length: number;
}

/**
 * Which part of the cache a sparse decode reads (dense decode: all of it): Quest's page list, or
 * every token but one gap per KV head (sliding window + sinks; Ada-SnapKV's compacted cache, its
 * heads' kept tokens apart from the decoded ones); params.kvLen is then the cache's length.
 */
export type DecodeSubset = { pageList: DecodePageList } | { tokenGaps: readonly DecodeTokenGap[] };

export function createDenseDecode(
  ctx: GpuContext,
  params: DecodeParams,
  buffers: DecodeBuffers,
  tuning?: DecodeTuning,
  subset?: DecodeSubset,
): DenseDecode {
  const { device } = ctx;
  const { numHeads, numKvHeads, headDim } = params;
  const pageList = subset && 'pageList' in subset ? subset.pageList : undefined;
  // Gaps of no token read the whole cache: plain dense decode.
  const gapsGiven = subset && 'tokenGaps' in subset ? subset.tokenGaps : undefined;
  const tokenGaps = gapsGiven?.some((gap) => gap.length > 0) ? gapsGiven : undefined;
  const gapWords = tokenGaps && tokenGapWords(params, tokenGaps);
  // With gaps the splits cover the tokens of the head that reads the most.
  const longest = tokenGaps ? params.kvLen - Math.min(...tokenGaps.map((g) => g.length)) : 0;
  const listed = tokenGaps ? { ...params, kvLen: longest } : params;
  const plan = decodeSplitPlan(ctx, listed, tuning);
  const split = ctx.pipelines.get('attention/dense_decode', {
    ...decodeSplitDefines(params, plan),
    ...(pageList ? { PAGE_LIST: true, LIST_LEN: pageList.listLen } : {}),
    ...(gapWords ? { TOKEN_GAP: true } : {}),
  });
  const gapBuffer = gapWords && createStorageBuffer(device, gapWords, 'decode token gaps');
  const reduce = ctx.pipelines.get('attention/dense_decode_reduce', decodeReduceDefines(headDim));
  const uniforms = createUniformBuffer(
    device,
    [listed.kvLen, plan.tokensPerSplit, plan.numSplits, params.scale * Math.LOG2E],
    [3],
    'dense decode params',
  );
  const partials = numHeads * plan.numSplits;
  const partO = createEmptyBuffer(device, partials * headDim * 4, 'dense decode partial out');
  const partMl = createEmptyBuffer(device, partials * 8, 'dense decode partial max/sum');

  const splitGroup = bindGroup(device, split, [
    uniforms,
    buffers.q,
    buffers.kPool,
    buffers.vPool,
    buffers.pageTable,
    partO,
    partMl,
    ...(pageList ? [pageList.buffer] : []),
    ...(gapBuffer ? [gapBuffer] : []),
  ]);
  const reduceGroup = bindGroup(device, reduce, [uniforms, partO, partMl, buffers.out]);
  const dimChunks = reduceDimChunks(headDim);
  return {
    record: (pass) => {
      pass.setPipeline(split);
      pass.setBindGroup(0, splitGroup);
      pass.dispatchWorkgroups(plan.numSplits, numKvHeads);
      pass.setPipeline(reduce);
      pass.setBindGroup(0, reduceGroup);
      pass.dispatchWorkgroups(dimChunks, numHeads);
    },
    scratch: [uniforms, partO, partMl, ...(gapBuffer ? [gapBuffer] : [])],
  };
}

/** (start, length, tokens read, 0) per KV head, as dense_decode.wgsl's token_gaps. */
function tokenGapWords(params: DecodeParams, gaps: readonly DecodeTokenGap[]): Uint32Array {
  if (gaps.length !== params.numKvHeads) {
    throw new Error(`dense decode: ${gaps.length} token gaps for ${params.numKvHeads} KV heads`);
  }
  const words = new Uint32Array(4 * gaps.length);
  gaps.forEach(({ start, length }, g) => {
    const read = params.kvLen - length;
    if (!(start >= 0 && length >= 0 && start + length <= params.kvLen && read >= 1)) {
      throw new Error(
        `dense decode: KV head ${g}'s gap [${start}, ${start + length}) does not fit`,
      );
    }
    words.set([start, length, read, 0], 4 * g);
  });
  return words;
}

/** Allocates the partials once; the returned function encodes the split and reduce dispatches. */
export function recordDenseDecode(
  ctx: GpuContext,
  params: DecodeParams,
  buffers: DecodeBuffers,
  tuning?: DecodeTuning,
): RecordDispatches {
  return createDenseDecode(ctx, params, buffers, tuning).record;
}

export interface HostDecodeInput extends DecodeParams {
  q: Float32Array;
  /** Contiguous kvLen x kvHead x dim. */
  k: Float32Array;
  v: Float32Array;
  /** Logical page -> physical page; the identity when absent. */
  pageTable?: Uint32Array;
}

export interface HostDenseDecodeInput extends HostDecodeInput {
  /** Per KV head, the cache tokens not to read (sliding window + sinks). */
  tokenGaps?: readonly DecodeTokenGap[];
}

/** Uploads, runs once and reads back out[head][dim]: for tests and the self-check. */
export async function denseDecodeOnHost(
  ctx: GpuContext,
  input: HostDenseDecodeInput,
): Promise<Float32Array> {
  const { device } = ctx;
  const { kvLen, kv, numHeads, headDim, tokenGaps } = input;
  const pageTable =
    input.pageTable ?? Uint32Array.from({ length: pagesFor(kvLen, kv.pageSize) }, (_, i) => i);
  const kPool = packPagedPool(input.k, kvLen, kv, pageTable).data;
  const vPool = packPagedPool(input.v, kvLen, kv, pageTable).data;
  const buffers: DecodeBuffers = {
    q: createStorageBuffer(device, input.q, 'decode q'),
    kPool: createStorageBuffer(device, kPool, 'decode k pool'),
    vPool: createStorageBuffer(device, vPool, 'decode v pool'),
    pageTable: createStorageBuffer(device, pageTable, 'decode page table'),
    out: createEmptyBuffer(device, numHeads * headDim * 4, 'decode out'),
  };
  const decode = createDenseDecode(ctx, input, buffers, undefined, tokenGaps && { tokenGaps });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  decode.record(pass);
  pass.end();
  device.queue.submit([encoder.finish()]);
  const out = await readFloat32(device, buffers.out, numHeads * headDim);
  for (const buffer of [...Object.values(buffers), ...decode.scratch]) buffer.destroy();
  return out;
}
