/**
 * BLASST on the GPU: block skipping inside the online-softmax loop of the dense kernels
 * (shaders/attention/dense_prefill.wgsl and dense_decode.wgsl built with BLASST), following the
 * CPU reference src/methods/reference/blasst.ts.
 *
 * Prefill: a block is the kernel's key tile (PrefillTileConfig.keyTile) and the rows that vote are
 * the workgroup's query tile (queryTile) of one query head: the reference with blockQ = queryTile,
 * blockK = keyTile, both from blasstPrefillTileConfig by default. Counts are written per (head,
 * query tile).
 *
 * Decode: split-K like dense decode. The cache is cut into splits of `blocksPerSplit` blocks of
 * `blockTokens` tokens, one workgroup per (split, KV head), and every split is its own BLASST walk
 * with its own running max; the reduce pass merges the splits exactly, as for dense decode
 * (skipping only chooses which blocks enter the sum). Each split first visits the cache's anchor
 * blocks, the head of the order's sequential walk (natural: block 0; sink-recent-first: the last
 * block, then block 0), then its own other blocks ascending; an anchor it does not own only raises
 * its running max (scored, K only: not summed or counted). So every split tests its blocks against
 * the sink's (and the recent block's) max instead of keeping its first block for want of one; one
 * split (blocksPerSplit >= the cache's blocks) is the reference's sequential walk. The workgroup serves the whole GQA group, so the decision is
 * uniform over the group: a block is skipped only when all query heads of the KV head vote skip.
 * The reference's blasstDecode decides per query head; with one split the two agree when the group
 * size is 1, and otherwise equal the reference run with the group's query heads as the rows of one
 * row group (see tests/kernels/blasst.test.ts). Counts are per KV head, summed over the splits.
 */
import { createEmptyBuffer, createStorageBuffer, readBuffer, readFloat32 } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import { stepResources, type StepScratch } from '../gpu/scratch';
import type { RecordDispatches } from '../gpu/timer';
import type { BlasstOrder } from '../methods/reference/blasst';
import {
  decodeReduceDefines,
  decodeSplitDefines,
  decodeSplitPlan,
  reduceDimChunks,
  type DecodeBuffers,
  type DecodeParams,
  type DecodeSplitPlan,
  type HostDecodeInput,
} from './denseDecode';
import {
  buildDensePrefill,
  prefillTileConfig,
  type HostPrefillInput,
  type PrefillBuffers,
  type PrefillParams,
  type PrefillTileConfig,
} from './densePrefill';
import { groupSize } from './layout';
import { packPagedPool, pagesFor } from './pagedKv';

export interface BlasstOptions {
  /** Skip a block when exp(m_blk - m) < lambda for every row; 0 keeps every block. */
  lambda: number;
  order: BlasstOrder;
}

export interface BlasstCounts {
  /** u32 [head][query tile][skipped, kept] (prefill) or [kvHead][skipped, kept] (decode). */
  counts: GPUBuffer;
}

export interface BlasstHostResult {
  out: Float32Array;
  /** Prefill: per (head, query tile), index head * queryTiles + tile; decode: per KV head. */
  skipped: Uint32Array;
  kept: Uint32Array;
}

/** -f32 max: a threshold no finite score difference falls below (lambda = 0 keeps everything). */
const keepAll = -3.4e38;

function blasstUniformTail(options: BlasstOptions): [number, number] {
  const { lambda, order } = options;
  if (!(lambda >= 0 && lambda <= 1))
    throw new Error(`BLASST lambda must be in [0, 1], got ${lambda}`);
  return [lambda > 0 ? Math.log2(lambda) : keepAll, order === 'sink-recent-first' ? 1 : 0];
}

function splitCounts(words: Uint32Array): { skipped: Uint32Array; kept: Uint32Array } {
  const n = words.length / 2;
  return {
    skipped: Uint32Array.from({ length: n }, (_, i) => words[2 * i]),
    kept: Uint32Array.from({ length: n }, (_, i) => words[2 * i + 1]),
  };
}

// ---------------------------------------------------------------------------------------------
// Prefill

/** Bytes of the prefill counts buffer: 2 u32 per (head, query tile). */
export function blasstPrefillCountsBytes(
  params: Pick<PrefillParams, 'numHeads' | 'numQueries'>,
  config: PrefillTileConfig,
): number {
  return params.numHeads * Math.ceil(params.numQueries / config.queryTile) * 2 * 4;
}

/** Workgroup memory of BLASST's vote (two atomics; 32 bytes leaves room for Dawn's layout). */
const voteBytes = 32;

/**
 * The dense prefill tiling with room for BLASST's vote: where the dense K/V tile fills workgroup
 * memory (d 128 on 32 KiB devices), one key chunk less. Only keyTile changes, so the counts
 * (per query tile) keep their layout.
 */
export function blasstPrefillTileConfig(ctx: GpuContext, headDim: number): PrefillTileConfig {
  const base = prefillTileConfig(ctx, headDim);
  const limit = ctx.caps.maxWorkgroupStorageBytes;
  if (base.workgroupBytes + voteBytes <= limit) return base;
  const bytesPerKey = base.workgroupBytes / base.keyTile;
  const keyTile = Math.floor((limit - voteBytes) / bytesPerKey / base.keyChunk) * base.keyChunk;
  if (keyTile < base.keyChunk) {
    throw new Error(
      `BLASST prefill: ${limit} B of workgroup memory is too little for d ${headDim}`,
    );
  }
  return { ...base, keyTile, workgroupBytes: keyTile * bytesPerKey };
}

function buildBlasstPrefill(
  ctx: GpuContext,
  params: PrefillParams,
  buffers: PrefillBuffers & BlasstCounts,
  options: BlasstOptions,
  config: PrefillTileConfig,
): { record: RecordDispatches; uniforms: GPUBuffer } {
  const skipping = {
    uniforms: blasstUniformTail(options),
    floatIndices: [0],
    counts: buffers.counts,
  };
  return buildDensePrefill(ctx, params, buffers, config, skipping);
}

/** BLASST prefill's recorder and the uniform buffer it allocated (scratch, for the caller to free). */
export function createBlasstPrefill(
  ctx: GpuContext,
  params: PrefillParams,
  buffers: PrefillBuffers & BlasstCounts,
  options: BlasstOptions,
  config: PrefillTileConfig = blasstPrefillTileConfig(ctx, params.headDim),
): { record: RecordDispatches; scratch: GPUBuffer[] } {
  const { record, uniforms } = buildBlasstPrefill(ctx, params, buffers, options, config);
  return { record, scratch: [uniforms] };
}

/**
 * Records BLASST prefill: dense_prefill with block skipping; `buffers.counts` receives
 * blasstPrefillCountsBytes bytes. The uniform buffer lives as long as the recorder is reachable.
 */
export function recordBlasstPrefill(
  ctx: GpuContext,
  params: PrefillParams,
  buffers: PrefillBuffers & BlasstCounts,
  options: BlasstOptions,
  config: PrefillTileConfig = blasstPrefillTileConfig(ctx, params.headDim),
): RecordDispatches {
  return buildBlasstPrefill(ctx, params, buffers, options, config).record;
}

/** Uploads, runs once, reads back out and the per (head, query tile) counts. */
export async function blasstPrefillOnHost(
  ctx: GpuContext,
  input: HostPrefillInput,
  options: BlasstOptions,
  config: PrefillTileConfig = blasstPrefillTileConfig(ctx, input.headDim),
): Promise<BlasstHostResult> {
  const { device } = ctx;
  if (input.numQueries === 0) {
    return { out: new Float32Array(0), skipped: new Uint32Array(0), kept: new Uint32Array(0) };
  }
  const kvLen = input.qStart + input.numQueries;
  const pageTable =
    input.pageTable ??
    Uint32Array.from({ length: pagesFor(kvLen, input.kv.pageSize) }, (_, i) => i);
  const outputLength = input.numQueries * input.numHeads * input.headDim;
  const countsBytes = blasstPrefillCountsBytes(input, config);
  const buffers: PrefillBuffers & BlasstCounts = {
    q: createStorageBuffer(device, input.q, 'blasst prefill q'),
    kPool: createStorageBuffer(device, packPagedPool(input.k, kvLen, input.kv, pageTable).data),
    vPool: createStorageBuffer(device, packPagedPool(input.v, kvLen, input.kv, pageTable).data),
    pageTable: createStorageBuffer(device, pageTable, 'blasst prefill page table'),
    out: createEmptyBuffer(device, outputLength * 4, 'blasst prefill out'),
    counts: createEmptyBuffer(device, countsBytes, 'blasst prefill counts'),
  };
  const { record, uniforms } = buildBlasstPrefill(ctx, input, buffers, options, config);
  try {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    record(pass);
    pass.end();
    device.queue.submit([encoder.finish()]);
    const out = await readFloat32(device, buffers.out, outputLength);
    const words = new Uint32Array(await readBuffer(device, buffers.counts, countsBytes));
    return { out, ...splitCounts(words) };
  } finally {
    for (const buffer of [...Object.values(buffers), uniforms]) buffer.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Decode

export interface BlasstDecodeOptions extends BlasstOptions {
  /** Tokens per skippable block: a multiple of the plan's token rows; 64 by default. */
  blockTokens?: number;
  /**
   * Blocks per split (per workgroup): more splits mean more parallel work, fewer mean fewer anchor
   * blocks scored twice. Infinity walks the whole cache in one split per KV head.
   */
  blocksPerSplit?: number;
}

export const defaultBlasstDecodeBlock = 64;
const minBlasstWorkgroups = 256;

/**
 * Blocks per split when none is asked: 8 (512 tokens, the dense plan's longest split), or 4 where 8
 * would leave fewer than 256 workgroups. H100, 32 / 8 heads, d 128, f16, 73-76% skipped, two runs:
 * at 8K (128 workgroups with 8) 4 blocks took 0.0237-0.0238 ms against 8's 0.0265-0.0266 (dense
 * 0.0204); at 32K (512 workgroups) 8 took 0.0656-0.0658 ms against 4's 0.0762-0.0766.
 */
export function defaultBlasstBlocksPerSplit(numBlocks: number, numKvHeads: number): number {
  return Math.ceil(numBlocks / 8) * numKvHeads >= minBlasstWorkgroups ? 8 : 4;
}

/**
 * The dense decode plan turned into BLASST's: rows x unroll = blockTokens tokens per step, so that
 * one step is one block, and splits of blocksPerSplit blocks (fewer when the cache is shorter;
 * defaultBlasstBlocksPerSplit when not given).
 */
export function blasstDecodePlan(
  ctx: GpuContext,
  params: DecodeParams,
  blockTokens = defaultBlasstDecodeBlock,
  blocksPerSplit?: number,
): DecodeSplitPlan {
  const rows = decodeSplitPlan(ctx, params).rows;
  if (!Number.isInteger(blockTokens) || blockTokens < rows || blockTokens % rows !== 0) {
    throw new Error(
      `BLASST decode: a block of ${blockTokens} tokens must be a positive multiple of ${rows} (the kernel's token rows); use 64`,
    );
  }
  if (blocksPerSplit !== undefined && !(blocksPerSplit >= 1)) {
    throw new Error(
      `BLASST decode: blocksPerSplit must be >= 1 (or Infinity), got ${blocksPerSplit}`,
    );
  }
  const plan = decodeSplitPlan(ctx, params, { targetWorkgroups: 1, unroll: blockTokens / rows });
  const numBlocks = Math.ceil(params.kvLen / blockTokens);
  const asked = blocksPerSplit ?? defaultBlasstBlocksPerSplit(numBlocks, params.numKvHeads);
  const splitBlocks = Math.min(numBlocks, Math.floor(asked));
  const numSplits = Math.ceil(numBlocks / splitBlocks);
  if (numSplits > ctx.caps.maxComputeWorkgroupsPerDimension) {
    throw new Error(`BLASST decode: ${numSplits} splits are too many; raise blocksPerSplit`);
  }
  return {
    ...plan,
    tokensPerSplit: splitBlocks * blockTokens,
    numSplits,
    workgroups: numSplits * params.numKvHeads,
  };
}

export interface BlasstDecode {
  record: RecordDispatches;
  plan: DecodeSplitPlan;
  /** The buffers this instance allocated: its uniforms and partials, without a step scratch. */
  scratch: GPUBuffer[];
}

/**
 * Split and reduce passes; partials, uniforms and bind groups from `stepScratch` when given (as
 * createDenseDecode).
 */
export function createBlasstDecode(
  ctx: GpuContext,
  params: DecodeParams,
  buffers: DecodeBuffers & BlasstCounts,
  options: BlasstDecodeOptions,
  stepScratch?: StepScratch,
): BlasstDecode {
  const plan = blasstDecodePlan(ctx, params, options.blockTokens, options.blocksPerSplit);
  const { device } = ctx;
  const { numHeads, numKvHeads, headDim } = params;
  const split = ctx.pipelines.get('attention/dense_decode', {
    ...decodeSplitDefines(params, plan),
    BLASST: true,
  });
  const reduce = ctx.pipelines.get('attention/dense_decode_reduce', {
    ...decodeReduceDefines(headDim),
    GROUP: groupSize(params),
    BLASST: true,
  });
  const owned: GPUBuffer[] = [];
  const resources = stepResources(device, stepScratch, owned);
  const uniforms = resources.uniform(
    'blasst decode params',
    [
      params.kvLen,
      plan.tokensPerSplit,
      plan.numSplits,
      params.scale * Math.LOG2E,
      ...blasstUniformTail(options),
    ],
    [3, 4],
  );
  const partials = numHeads * plan.numSplits;
  const partO = resources.buffer('decode partial out', partials * headDim * 4);
  const partMl = resources.buffer('decode partial max/sum', partials * 8);
  const splitCounts = resources.buffer(
    'blasst decode counts per split',
    numKvHeads * plan.numSplits * 8,
  );
  const splitGroup = resources.bindGroup(split, [
    uniforms,
    buffers.q,
    buffers.kPool,
    buffers.vPool,
    buffers.pageTable,
    partO,
    partMl,
    splitCounts,
  ]);
  const reduceGroup = resources.bindGroup(reduce, [
    uniforms,
    partO,
    partMl,
    buffers.out,
    splitCounts,
    buffers.counts,
  ]);
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
    plan,
    scratch: owned,
  };
}

/** Records BLASST decode (split + reduce); `buffers.counts` takes 2 u32 per KV head. */
export function recordBlasstDecode(
  ctx: GpuContext,
  params: DecodeParams,
  buffers: DecodeBuffers & BlasstCounts,
  options: BlasstDecodeOptions,
): RecordDispatches {
  return createBlasstDecode(ctx, params, buffers, options).record;
}

/** Uploads, runs once, reads back out[head][dim] and the per KV head counts. */
export async function blasstDecodeOnHost(
  ctx: GpuContext,
  input: HostDecodeInput,
  options: BlasstDecodeOptions,
): Promise<BlasstHostResult> {
  const { device } = ctx;
  const { kvLen, kv, numHeads, numKvHeads, headDim } = input;
  const pageTable =
    input.pageTable ?? Uint32Array.from({ length: pagesFor(kvLen, kv.pageSize) }, (_, i) => i);
  const buffers: DecodeBuffers & BlasstCounts = {
    q: createStorageBuffer(device, input.q, 'blasst decode q'),
    kPool: createStorageBuffer(device, packPagedPool(input.k, kvLen, kv, pageTable).data),
    vPool: createStorageBuffer(device, packPagedPool(input.v, kvLen, kv, pageTable).data),
    pageTable: createStorageBuffer(device, pageTable, 'blasst decode page table'),
    out: createEmptyBuffer(device, numHeads * headDim * 4, 'blasst decode out'),
    counts: createEmptyBuffer(device, numKvHeads * 8, 'blasst decode counts'),
  };
  const decode = createBlasstDecode(ctx, input, buffers, options);
  try {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    decode.record(pass);
    pass.end();
    device.queue.submit([encoder.finish()]);
    const out = await readFloat32(device, buffers.out, numHeads * headDim);
    const words = new Uint32Array(await readBuffer(device, buffers.counts, numKvHeads * 8));
    return { out, ...splitCounts(words) };
  } finally {
    for (const buffer of [...Object.values(buffers), ...decode.scratch]) buffer.destroy();
  }
}
