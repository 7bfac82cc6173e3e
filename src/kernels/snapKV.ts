/**
 * SnapKV and Ada-SnapKV on the GPU: which prompt tokens each KV head keeps, and the compaction of
 * the paged KV cache to those tokens, matching the float64 references
 * src/methods/reference/{snapKV,adaSnapKV}.ts in the kept token sets (ties to the lower index).
 *
 * Selection (snapKVSelectOnGpu): the estimation shared with Vertical-Slash (planners.ts
 * createEstimation: scaled scores and softmax statistics of the last `window` prompt queries, per
 * query head, in batches of whole GQA groups) -> snapkv_importance (per KV head and key: the mean
 * over the group's heads summed over the window, or for Ada-SnapKV the max over both) ->
 * snapkv_pool (1-D average pooling, the last `localWindow` and first `prefixTokens` keys forced to
 * +Infinity) -> planner_select (radix top-k per KV head, bitsets). SnapKV keeps the top `capacity`
 * per head. Ada-SnapKV keeps each head's top minPerHead (as the reference computes it), then
 * snapkv_exclude lays all heads' scores out as one row with those taken at -Infinity and a single
 * planner_select over it hands the remaining (capacity - minPerHead) * numKvHeads tokens to the
 * best scores of all heads (ties: lower head, lower token). snapkv_list turns the bitsets into
 * per-head kept lists, ascending: kept[g * keptStride + j], j < lengths[g].
 *
 * Compaction (compactKvOnGpu): snapkv_compact copies the kept rows of every KV head, in ascending
 * position order, into new K and V pools of the same layout (layout.ts,
 * pool[page][kvHead][slot][dim], f32 or f16 pairs), followed by the tokens generated since the
 * prompt (all kept), and writes the per-head lengths. Every head gets `headStride` slots (pages of
 * headStride tokens, identity page table). SnapKV heads all keep the same count, so the dense
 * decode kernel (denseDecode.ts) runs over the compacted pools as they are, kvLen = that count.
 *
 * Ada-SnapKV heads keep different counts: head g's slots past lengths[g] are padding (zeros). The
 * dense decode kernel takes one kvLen for all heads and no per-head length, so the padding is
 * masked by running it per KV head on a single-head view of the same pools: with numKvHeads = 1,
 * pool page p * numKvHeads + g is exactly page p of head g (headViewPageTable), and kvLen =
 * lengths[g] stops before the padding (decodeCompactedOnGpu does this; numKvHeads dispatches
 * instead of one).
 */
import {
  bindGroup,
  createEmptyBuffer,
  createStorageBuffer,
  createUniformBuffer,
  readBuffer,
  readFloat32,
} from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import type { RecordDispatches } from '../gpu/timer';
import { createDenseDecode } from './denseDecode';
import type { HostPrefillInput } from './densePrefill';
import { groupSize, wordsPerPage, type PagedKvLayout } from './layout';
import { packPagedPool, pagesFor } from './pagedKv';
import {
  createEstimation,
  type EstimationTuning,
  type GpuPlan,
  type PlannerBuffers,
  type PlannerParams,
} from './planners';

const WG = 256;
const COMPACT_WG = 64;

export interface SnapKVSelectOptions extends EstimationTuning {
  /** Last prompt queries whose attention scores the keys. */
  window: number;
  /** Odd average-pooling kernel. */
  poolKernel: number;
  /** Tokens kept per KV head (Ada-SnapKV: on average), clamped to the prompt length. */
  capacity: number;
  mode: 'snapkv' | 'ada';
  /** Ada-SnapKV: each head keeps at least floor(minRatio * capacity) tokens. Default 0.2. */
  minRatio?: number;
  /** Always kept: the last localWindow (default 128) and first prefixTokens (default 4) tokens. */
  localWindow?: number;
  prefixTokens?: number;
}

export interface SnapKVSelectOutputs {
  /** u32 [kvHead][keptStride]: kept prompt tokens ascending, lengths[g] of them valid. */
  kept: GPUBuffer;
  /** u32 per KV head. */
  lengths: GPUBuffer;
  keptStride: number;
  /** f32 [kvHead][numKeys]: pooled importance, forced tokens at +Infinity. */
  scores: GPUBuffer;
  /** The clamped capacity, and (Ada-SnapKV) each head's guaranteed share; capacity for SnapKV. */
  capacity: number;
  minPerHead: number;
}

/** Capacity, per-head minimum and the most tokens one head can keep, as the references compute. */
export function snapKVBudgets(
  numKeys: number,
  numKvHeads: number,
  options: SnapKVSelectOptions,
): { capacity: number; minPerHead: number; keptStride: number } {
  const localWindow = options.localWindow ?? 128;
  const prefixTokens = options.prefixTokens ?? 4;
  const capacity = Math.min(options.capacity, numKeys);
  const forced = localWindow + prefixTokens;
  if (capacity < Math.min(numKeys, forced)) {
    throw new Error(
      `snapKV: capacity ${options.capacity} must cover localWindow + prefixTokens ` +
        `(${localWindow} + ${prefixTokens}) or the whole prompt (${numKeys} tokens)`,
    );
  }
  if (options.mode === 'snapkv') return { capacity, minPerHead: capacity, keptStride: capacity };
  const minRatio = options.minRatio ?? 0.2;
  const minPerHead = Math.min(
    capacity,
    Math.max(Math.floor(capacity * minRatio), Math.min(forced, numKeys)),
  );
  const keptStride = Math.min(numKeys, minPerHead + (capacity - minPerHead) * numKvHeads);
  return { capacity, minPerHead, keptStride };
}

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** planner_select's uniforms (non-block mode): rows of n entries at `stride`, top k. */
function selectUniforms(device: GPUDevice, stride: number, n: number, k: number, words: number) {
  return createUniformBuffer(device, [stride, n, k, 0, 1 << 30, 0, 0, 0, 0, words, 0, 0, 0], [12]);
}

/**
 * Records the selection over the prompt held in the prefill's q, K pool and page table (params: the
 * prefill's, numQueries prompt queries from qStart; the keys are the qStart + numQueries tokens).
 */
export function snapKVSelectOnGpu(
  ctx: GpuContext,
  params: PlannerParams,
  buffers: PlannerBuffers,
  options: SnapKVSelectOptions,
): GpuPlan<SnapKVSelectOutputs> {
  const { device } = ctx;
  const { numKvHeads, numQueries, qStart } = params;
  const ada = options.mode === 'ada';
  if (options.poolKernel % 2 !== 1) throw new Error('snapKV: poolKernel must be odd');
  const numKeys = qStart + numQueries;
  const rows = Math.min(options.window, numQueries);
  if (rows < 1) throw new Error('snapKV: no query to score with');
  const { capacity, minPerHead, keptStride } = snapKVBudgets(numKeys, numKvHeads, options);
  const keyWords = ceilDiv(numKeys, 32);
  const flatWords = ceilDiv(numKeys * numKvHeads, 32);
  const estimation = createEstimation(ctx, params, buffers, rows, options.estimateScratchBytes);
  const importancePipeline = ctx.pipelines.get('attention/snapkv_importance', {
    WG: 64,
    MAX_REDUCE: ada,
  });
  const poolPipeline = ctx.pipelines.get('attention/snapkv_pool', { WG });
  const selectPipeline = ctx.pipelines.get('attention/planner_select', {
    WG,
    BLOCK_MODE: false,
    COVER: false,
  });
  const listPipeline = ctx.pipelines.get('attention/snapkv_list', { WG, ADA: ada });

  const importance = createEmptyBuffer(device, numKvHeads * numKeys * 4, 'snapkv importance');
  const scores = createEmptyBuffer(device, numKvHeads * numKeys * 4, 'snapkv pooled scores');
  const bits = createEmptyBuffer(device, numKvHeads * keyWords * 4, 'snapkv bitsets');
  const sizes = createEmptyBuffer(device, numKvHeads * 4, 'snapkv select sizes');
  const kept = createEmptyBuffer(device, numKvHeads * keptStride * 4, 'snapkv kept');
  const lengths = createEmptyBuffer(device, numKvHeads * 4, 'snapkv lengths');
  const poolUniforms = createUniformBuffer(device, [
    numKeys,
    options.poolKernel,
    options.localWindow ?? 128,
    options.prefixTokens ?? 4,
  ]);
  const headSelectUniforms = selectUniforms(device, numKeys, numKeys, minPerHead, keyWords);
  const listUniforms = createUniformBuffer(device, [numKeys, keyWords, keptStride]);
  const owned = [importance, bits, sizes, poolUniforms, headSelectUniforms, listUniforms];

  const importanceGroups = estimation.batches.map((batch) =>
    bindGroup(device, importancePipeline, [
      batch.uniforms,
      estimation.scaled,
      estimation.stats,
      importance,
    ]),
  );
  const poolGroup = bindGroup(device, poolPipeline, [poolUniforms, importance, scores]);
  const headSelectGroup = bindGroup(device, selectPipeline, [
    headSelectUniforms,
    scores,
    bits,
    sizes,
  ]);

  let recordAda: RecordDispatches = () => {};
  const listBuffers = [listUniforms, bits, kept, lengths];
  if (ada) {
    const excludePipeline = ctx.pipelines.get('attention/snapkv_exclude', { WG });
    const flat = createEmptyBuffer(device, numKvHeads * numKeys * 4, 'ada-snapkv flat scores');
    const flatBits = createEmptyBuffer(device, flatWords * 4, 'ada-snapkv flat bitset');
    const flatSize = createEmptyBuffer(device, 4, 'ada-snapkv flat size');
    const excludeUniforms = createUniformBuffer(device, [numKeys, keyWords]);
    const flatK = (capacity - minPerHead) * numKvHeads;
    const flatSelectUniforms = selectUniforms(device, 0, numKeys * numKvHeads, flatK, flatWords);
    owned.push(flat, flatBits, flatSize, excludeUniforms, flatSelectUniforms);
    listBuffers.push(flatBits);
    const excludeGroup = bindGroup(device, excludePipeline, [excludeUniforms, scores, bits, flat]);
    const flatSelectGroup = bindGroup(device, selectPipeline, [
      flatSelectUniforms,
      flat,
      flatBits,
      flatSize,
    ]);
    recordAda = (pass) => {
      pass.setPipeline(excludePipeline);
      pass.setBindGroup(0, excludeGroup);
      pass.dispatchWorkgroups(ceilDiv(numKeys, WG), numKvHeads);
      pass.setPipeline(selectPipeline);
      pass.setBindGroup(0, flatSelectGroup);
      pass.dispatchWorkgroups(1);
    };
  }
  const listGroup = bindGroup(device, listPipeline, listBuffers);

  const record: RecordDispatches = (pass) => {
    estimation.batches.forEach((batch, b) => {
      estimation.record(pass, b);
      pass.setPipeline(importancePipeline);
      pass.setBindGroup(0, importanceGroups[b]);
      pass.dispatchWorkgroups(ceilDiv(numKeys, 64), batch.heads / groupSize(params));
    });
    pass.setPipeline(poolPipeline);
    pass.setBindGroup(0, poolGroup);
    pass.dispatchWorkgroups(ceilDiv(numKeys, WG), numKvHeads);
    pass.setPipeline(selectPipeline);
    pass.setBindGroup(0, headSelectGroup);
    pass.dispatchWorkgroups(numKvHeads);
    recordAda(pass);
    pass.setPipeline(listPipeline);
    pass.setBindGroup(0, listGroup);
    pass.dispatchWorkgroups(numKvHeads);
  };
  return {
    record,
    outputs: { kept, lengths, keptStride, scores, capacity, minPerHead },
    destroy: () => {
      [...owned, kept, lengths, scores].forEach((buffer) => buffer.destroy());
      estimation.destroy();
    },
  };
}

export interface CompactParams {
  kv: PagedKvLayout;
  /** Prompt tokens the selection ran over. */
  promptLength: number;
  /** Tokens in the source cache: promptLength plus the ones generated since (all kept). */
  kvLen: number;
  /** Row stride of the kept lists (SnapKVSelectOutputs.keptStride). */
  keptStride: number;
  /**
   * Slots per KV head in the new pools, at least the most a head can hold (keptStride + generated
   * tokens); more leaves room to append decoded tokens. Default: exactly that.
   */
  headStride?: number;
}

export interface CompactBuffers {
  kPool: GPUBuffer;
  vPool: GPUBuffer;
  pageTable: GPUBuffer;
  kept: GPUBuffer;
  lengths: GPUBuffer;
}

export interface CompactOutputs {
  kPool: GPUBuffer;
  vPool: GPUBuffer;
  /** Identity page table of the new pools (numPages pages). */
  pageTable: GPUBuffer;
  /** u32 per KV head: tokens of the head in the new pools (kept prompt tokens + generated ones). */
  lengths: GPUBuffer;
  headStride: number;
  numPages: number;
}

/** Records the compaction of the source pools to the kept tokens (see the file comment). */
export function compactKvOnGpu(
  ctx: GpuContext,
  params: CompactParams,
  buffers: CompactBuffers,
): GpuPlan<CompactOutputs> {
  const { device } = ctx;
  const { kv, promptLength, kvLen, keptStride } = params;
  const tail = kvLen - promptLength;
  if (tail < 0) throw new Error('compactKv: kvLen must be at least promptLength');
  const headStride = params.headStride ?? keptStride + tail;
  if (headStride < keptStride + tail) throw new Error('compactKv: headStride too small');
  if (headStride > ctx.caps.maxComputeWorkgroupsPerDimension) {
    throw new Error('compactKv: too many slots per head for one dispatch');
  }
  const numPages = pagesFor(headStride, kv.pageSize);
  const pipeline = ctx.pipelines.get('attention/snapkv_compact', {
    HEAD_DIM: kv.headDim,
    NUM_KV_HEADS: kv.numKvHeads,
    PAGE_SIZE: kv.pageSize,
    KV_F16: kv.dtype === 'f16',
    WG: COMPACT_WG,
  });
  const poolBytes = numPages * wordsPerPage(kv) * 4;
  const kPool = createEmptyBuffer(device, poolBytes, 'snapkv compacted k pool');
  const vPool = createEmptyBuffer(device, poolBytes, 'snapkv compacted v pool');
  const identity = Uint32Array.from({ length: numPages }, (_, i) => i);
  const pageTable = createStorageBuffer(device, identity, 'snapkv compacted page table');
  const lengths = createEmptyBuffer(device, kv.numKvHeads * 4, 'snapkv compacted lengths');
  const uniforms = createUniformBuffer(device, [keptStride, promptLength, tail, headStride]);
  const group = bindGroup(device, pipeline, [
    uniforms,
    buffers.kept,
    buffers.lengths,
    buffers.kPool,
    buffers.vPool,
    buffers.pageTable,
    kPool,
    vPool,
    pageTable,
    lengths,
  ]);
  const rowWords = kv.dtype === 'f16' ? kv.headDim / 2 : kv.headDim;
  return {
    record: (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(ceilDiv(rowWords, COMPACT_WG), headStride, kv.numKvHeads);
    },
    outputs: { kPool, vPool, pageTable, lengths, headStride, numPages },
    destroy: () => [kPool, vPool, pageTable, lengths, uniforms].forEach((b) => b.destroy()),
  };
}

/**
 * Page table of KV head g's single-head view of a compacted pool: read with numKvHeads = 1, page p
 * of the view is pool page p * numKvHeads + g (pool[page][kvHead][slot][dim]).
 */
export function headViewPageTable(
  numPages: number,
  numKvHeads: number,
  kvHead: number,
): Uint32Array {
  return Uint32Array.from({ length: numPages }, (_, p) => p * numKvHeads + kvHead);
}

export interface CompactedCache {
  kPool: GPUBuffer;
  vPool: GPUBuffer;
  kv: PagedKvLayout;
  numPages: number;
  /** Tokens per KV head. */
  lengths: number[];
}

/**
 * One decode query per head (q[head][dim], f32) over a compacted cache with the dense decode
 * kernel: a single call when all heads hold the same count, else one call per KV head on its
 * single-head view (kvLen = its length, so the padding is never read). Returns out[head][dim].
 */
export async function decodeCompactedOnGpu(
  ctx: GpuContext,
  cache: CompactedCache,
  q: Float32Array,
  shape: { numHeads: number; scale: number },
): Promise<Float32Array> {
  const { device } = ctx;
  const { kv, lengths, numPages } = cache;
  const { numKvHeads, headDim } = kv;
  const group = groupSize({ ...shape, numKvHeads, headDim });
  const uniform = lengths.every((n) => n === lengths[0]);
  const calls = uniform
    ? [{ heads: shape.numHeads, kvHeads: numKvHeads, kvLen: lengths[0], first: 0, table: null }]
    : lengths.map((kvLen, g) => ({
        heads: group,
        kvHeads: 1,
        kvLen,
        first: g * group,
        table: headViewPageTable(numPages, numKvHeads, g),
      }));
  const out = new Float32Array(shape.numHeads * headDim);
  for (const call of calls) {
    if (call.kvLen < 1) throw new Error('decodeCompacted: a head holds no token');
    const qSlice = q.subarray(call.first * headDim, (call.first + call.heads) * headDim);
    const table = call.table ?? Uint32Array.from({ length: numPages }, (_, i) => i);
    const owned = {
      q: createStorageBuffer(device, qSlice, 'compacted decode q'),
      pageTable: createStorageBuffer(device, table, 'compacted decode page table'),
      out: createEmptyBuffer(device, call.heads * headDim * 4, 'compacted decode out'),
    };
    const decode = createDenseDecode(
      ctx,
      {
        numHeads: call.heads,
        numKvHeads: call.kvHeads,
        headDim,
        kvLen: call.kvLen,
        scale: shape.scale,
        kv: { ...kv, numKvHeads: call.kvHeads },
      },
      { ...owned, kPool: cache.kPool, vPool: cache.vPool },
    );
    submit(ctx, decode.record);
    out.set(await readFloat32(device, owned.out, call.heads * headDim), call.first * headDim);
    for (const buffer of [...Object.values(owned), ...decode.scratch]) buffer.destroy();
  }
  return out;
}

function submit(ctx: GpuContext, record: RecordDispatches): void {
  const encoder = ctx.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass);
  pass.end();
  ctx.device.queue.submit([encoder.finish()]);
}

async function readU32(ctx: GpuContext, buffer: GPUBuffer, count: number): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(ctx.device, buffer, Math.max(4, count * 4)), 0, count);
}

/**
 * Host input: the prompt's prefill (numQueries prompt queries from qStart) with K and V holding
 * kvLen >= qStart + numQueries tokens (the extra ones: generated after the prompt, all kept).
 */
export interface HostSnapKVInput extends Omit<HostPrefillInput, 'k' | 'v'> {
  k: Float32Array;
  v: Float32Array;
  /** Tokens in k and v; default qStart + numQueries. */
  kvLen?: number;
}

export interface SnapKVHostResult {
  /** kept[kvHead]: kept prompt tokens, ascending (as the references' `kept`). */
  kept: number[][];
  capacity: number;
  minPerHead: number;
  /** The compacted cache, still on the GPU (the caller destroys it with `destroy`). */
  cache: CompactedCache;
  /** The compacted pools read back (f32 values, or u32 words of f16 pairs). */
  kPool: Uint32Array | Float32Array;
  vPool: Uint32Array | Float32Array;
  destroy(): void;
}

/** Uploads the prompt and cache, selects, compacts, and reads the kept lists and pools back. */
export async function snapKVOnHost(
  ctx: GpuContext,
  input: HostSnapKVInput,
  options: SnapKVSelectOptions,
): Promise<SnapKVHostResult> {
  const { device } = ctx;
  const { kv, numKvHeads } = input;
  const promptLength = input.qStart + input.numQueries;
  const kvLen = input.kvLen ?? promptLength;
  const pageTable =
    input.pageTable ?? Uint32Array.from({ length: pagesFor(kvLen, kv.pageSize) }, (_, i) => i);
  const source = {
    q: createStorageBuffer(device, input.q, 'snapkv q'),
    kPool: createStorageBuffer(device, packPagedPool(input.k, kvLen, kv, pageTable).data),
    vPool: createStorageBuffer(device, packPagedPool(input.v, kvLen, kv, pageTable).data),
    pageTable: createStorageBuffer(device, pageTable, 'snapkv page table'),
  };
  const select = snapKVSelectOnGpu(ctx, input, source, options);
  const { kept, lengths, keptStride, capacity, minPerHead } = select.outputs;
  const compact = compactKvOnGpu(
    ctx,
    { kv, promptLength, kvLen, keptStride },
    { ...source, kept, lengths },
  );
  let done = false;
  try {
    submit(ctx, (pass) => {
      select.record(pass);
      compact.record(pass);
    });
    const keptRows = await readU32(ctx, kept, numKvHeads * keptStride);
    const keptCounts = await readU32(ctx, lengths, numKvHeads);
    const outLengths = await readU32(ctx, compact.outputs.lengths, numKvHeads);
    const poolBytes = compact.outputs.numPages * wordsPerPage(kv) * 4;
    const readPool = async (buffer: GPUBuffer) => {
      const bytes = await readBuffer(device, buffer, poolBytes);
      return kv.dtype === 'f16' ? new Uint32Array(bytes) : new Float32Array(bytes);
    };
    const result = {
      kept: Array.from({ length: numKvHeads }, (_, g) =>
        Array.from(keptRows.subarray(g * keptStride, g * keptStride + keptCounts[g])),
      ),
      capacity,
      minPerHead,
      cache: {
        kPool: compact.outputs.kPool,
        vPool: compact.outputs.vPool,
        kv,
        numPages: compact.outputs.numPages,
        lengths: Array.from(outLengths),
      },
      kPool: await readPool(compact.outputs.kPool),
      vPool: await readPool(compact.outputs.vPool),
      destroy: () => compact.destroy(),
    };
    done = true;
    return result;
  } finally {
    if (!done) compact.destroy();
    select.destroy();
    for (const buffer of Object.values(source)) buffer.destroy();
  }
}
