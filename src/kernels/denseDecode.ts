/**
 * Dense decode attention (one new query per head) over the paged KV cache: flash decoding in two
 * passes, shaders/attention/dense_decode.wgsl (split) and dense_decode_reduce.wgsl (reduce).
 */
import { createEmptyBuffer, createStorageBuffer, readFloat32 } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import { stepResources, type StepScratch } from '../gpu/scratch';
import type { RecordDispatches } from '../gpu/timer';
import { BLOCK_FULL, ceilDiv, type BlockMask } from '../methods/reference/masks';
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
 * A decoded row's mask (user patterns) as dense decode reads it: per KV head the key blocks that
 * any query head of its group keeps, and per query head the keys it keeps in blocks not kept whole
 * by the group. Made by decodeKeyBlocks from the row's block mask, once for all layers of a step.
 */
export interface DecodeKeyBlocks {
  numHeads: number;
  numKvHeads: number;
  /** The cache's length: the mask's keys. */
  kvLen: number;
  blockSize: number;
  /** Per KV head, the key blocks read, ascending. */
  blocks: number[][];
  /** Per KV head, the cache tokens of its listed blocks: what the decode reads. */
  tokensRead: number[];
  /** Every block of every KV head listed and kept whole: plain dense decode. */
  keepsAll: boolean;
  /** dense_decode.wgsl's key_blocks. */
  words: Uint32Array;
}

const allKept = 0xffffffff;

/**
 * Packs the block mask of one decoded row (numQueries 1; rule 'none' or 'bitset') for dense decode:
 * a block of a KV head is listed when a query head of its group lists it, and gets a bits slot
 * unless every head of the group lists it full. Lists run in key order, so a KV head's tokens read
 * in cache order and only its last block, the cache's last, may be short.
 */
export function decodeKeyBlocks(mask: BlockMask, numKvHeads: number): DecodeKeyBlocks {
  const { numHeads, numKeys, blockK, rule } = mask;
  if (mask.numQueries !== 1) throw new Error('decode key blocks: the mask must be one query row');
  if (rule.kind === 'vertical-slash') {
    throw new Error("decode key blocks: masks with the 'vertical-slash' rule are not supported");
  }
  if (numHeads % numKvHeads !== 0) {
    throw new Error(`decode key blocks: ${numHeads} heads over ${numKvHeads} KV heads`);
  }
  const group = numHeads / numKvHeads;
  const blockWords = ceilDiv(blockK, 32);
  const blocks: number[][] = [];
  // Per KV head and listed block: the group heads' mask entries (-1: the head skips the block).
  const entries: Int32Array[][] = [];
  for (let g = 0; g < numKvHeads; g++) {
    const byBlock = new Map<number, Int32Array>();
    for (let j = 0; j < group; j++) {
      const h = g * group + j;
      for (let e = mask.rowStart[h]; e < mask.rowStart[h + 1]; e++) {
        const kb = mask.keyBlock[e];
        let heads = byBlock.get(kb);
        if (!heads) byBlock.set(kb, (heads = new Int32Array(group).fill(-1)));
        heads[j] = e;
      }
    }
    const listed = [...byBlock.keys()].sort((a, b) => a - b);
    blocks.push(listed);
    entries.push(listed.map((kb) => byBlock.get(kb)!));
  }
  const stride = Math.max(1, ...blocks.map((list) => list.length));
  const listStart = 1 + numKvHeads;
  const bitsStart = listStart + 2 * numKvHeads * stride;
  const slotBits: Uint32Array[] = [];
  const header = new Uint32Array(bitsStart);
  header[0] = stride;
  const tokensRead = blocks.map((list) =>
    list.reduce((n, kb) => n + Math.min(blockK, numKeys - kb * blockK), 0),
  );
  header.set(tokensRead, 1);
  let keepsAll = true;
  blocks.forEach((list, g) => {
    keepsAll &&= list.length === mask.numKeyBlocks;
    list.forEach((kb, i) => {
      const heads = entries[g][i];
      const whole = heads.every((e) => e >= 0 && mask.blockKind[e] === BLOCK_FULL);
      keepsAll &&= whole;
      const at = listStart + 2 * (g * stride + i);
      header[at] = kb;
      header[at + 1] = whole ? allKept : slotBits.length;
      if (whole) return;
      const bits = new Uint32Array(group * blockWords);
      heads.forEach((e, j) => {
        if (e < 0) return;
        if (mask.blockKind[e] === BLOCK_FULL) {
          bits.fill(allKept, j * blockWords, (j + 1) * blockWords);
        } else if (rule.kind === 'bitset') {
          // Row 0 of the entry's bits: its first blockK bits.
          const from = rule.slot[e] * rule.wordsPerBlock;
          bits.set(rule.bits.subarray(from, from + blockWords), j * blockWords);
        }
      });
      slotBits.push(bits);
    });
  });
  const words = new Uint32Array(bitsStart + slotBits.length * group * blockWords);
  words.set(header);
  slotBits.forEach((bits, s) => words.set(bits, bitsStart + s * group * blockWords));
  return {
    numHeads,
    numKvHeads,
    kvLen: numKeys,
    blockSize: blockK,
    blocks,
    tokensRead,
    keepsAll,
    words,
  };
}

/**
 * Which part of the cache a sparse decode reads (dense decode: all of it): Quest's page list,
 * every token but one gap per KV head (sliding window + sinks; Ada-SnapKV's compacted cache, its
 * heads' kept tokens apart from the decoded ones; params.kvLen is then the cache's length), or a
 * user pattern's key blocks.
 */
export type DecodeSubset =
  | { pageList: DecodePageList }
  | { tokenGaps: readonly DecodeTokenGap[] }
  | { keyBlocks: DecodeKeyBlocks };

/** The subsets made on the CPU (Quest's page list is made on the GPU). */
export type DecodeTokenSubset = Exclude<DecodeSubset, { pageList: DecodePageList }>;

/** Tokens each KV head reads of a cache of kvLen tokens: all of them without a subset. */
export function tokensReadPerKvHead(
  kvLen: number,
  numKvHeads: number,
  subset?: DecodeTokenSubset,
): number[] {
  return Array.from({ length: numKvHeads }, (_, g) =>
    subset && 'keyBlocks' in subset
      ? subset.keyBlocks.tokensRead[g]
      : kvLen - (subset?.tokenGaps[g].length ?? 0),
  );
}

/**
 * The split and reduce passes; their partials, inputs and bind groups come from `stepScratch` when
 * given (a model step's layers share them, and the next step reuses them), else are the decode's
 * own (in `scratch`, to destroy).
 */
export function createDenseDecode(
  ctx: GpuContext,
  params: DecodeParams,
  buffers: DecodeBuffers,
  tuning?: DecodeTuning,
  subset?: DecodeSubset,
  stepScratch?: StepScratch,
): DenseDecode {
  const { device } = ctx;
  const { numHeads, numKvHeads, headDim } = params;
  const pageList = subset && 'pageList' in subset ? subset.pageList : undefined;
  // Gaps of no token read the whole cache: plain dense decode.
  const gapsGiven = subset && 'tokenGaps' in subset ? subset.tokenGaps : undefined;
  const tokenGaps = gapsGiven?.some((gap) => gap.length > 0) ? gapsGiven : undefined;
  const gapWords = tokenGaps && tokenGapWords(params, tokenGaps);
  // A mask that keeps every key reads the whole cache too.
  const masked = subset && 'keyBlocks' in subset ? subset.keyBlocks : undefined;
  if (masked) checkKeyBlocks(params, masked);
  const keyBlocks = masked?.keepsAll ? undefined : masked;
  // With gaps or key blocks the splits cover the tokens of the head that reads the most.
  const longest = tokenGaps
    ? params.kvLen - Math.min(...tokenGaps.map((g) => g.length))
    : Math.max(1, ...(keyBlocks?.tokensRead ?? []));
  const listed = tokenGaps || keyBlocks ? { ...params, kvLen: longest } : params;
  const plan = decodeSplitPlan(ctx, listed, tuning);
  const split = ctx.pipelines.get('attention/dense_decode', {
    ...decodeSplitDefines(params, plan),
    ...(pageList ? { PAGE_LIST: true, LIST_LEN: pageList.listLen } : {}),
    ...(gapWords ? { TOKEN_GAP: true } : {}),
    ...(keyBlocks ? { KEY_BLOCKS: true, KEY_BLOCK: keyBlocks.blockSize } : {}),
  });
  const owned: GPUBuffer[] = [];
  const resources = stepResources(device, stepScratch, owned);
  const subsetWords = gapWords ?? keyBlocks?.words;
  const subsetBuffer = subsetWords && resources.storage('decode subset', subsetWords);
  const reduce = ctx.pipelines.get('attention/dense_decode_reduce', decodeReduceDefines(headDim));
  const uniforms = resources.uniform(
    'dense decode params',
    [listed.kvLen, plan.tokensPerSplit, plan.numSplits, params.scale * Math.LOG2E],
    [3],
  );
  const partials = numHeads * plan.numSplits;
  const partO = resources.buffer('decode partial out', partials * headDim * 4);
  const partMl = resources.buffer('decode partial max/sum', partials * 8);

  const splitGroup = resources.bindGroup(split, [
    uniforms,
    buffers.q,
    buffers.kPool,
    buffers.vPool,
    buffers.pageTable,
    partO,
    partMl,
    ...(pageList ? [pageList.buffer] : []),
    ...(subsetBuffer ? [subsetBuffer] : []),
  ]);
  const reduceGroup = resources.bindGroup(reduce, [uniforms, partO, partMl, buffers.out]);
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
    scratch: owned,
  };
}

function checkKeyBlocks(params: DecodeParams, keyBlocks: DecodeKeyBlocks): void {
  const { numHeads, numKvHeads, kvLen, blockSize } = keyBlocks;
  if (
    numHeads !== params.numHeads ||
    numKvHeads !== params.numKvHeads ||
    kvLen !== params.kvLen ||
    !(Number.isInteger(blockSize) && blockSize >= 1)
  ) {
    throw new Error(
      `dense decode: key blocks of ${numHeads} heads, ${numKvHeads} KV heads and ${kvLen} keys ` +
        `(block ${blockSize}) do not fit ${params.numHeads}, ${params.numKvHeads} and ${params.kvLen}`,
    );
  }
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
  /** A user pattern's row: the key blocks to read and the keys each query head keeps. */
  keyBlocks?: DecodeKeyBlocks;
}

/** Uploads, runs once and reads back out[head][dim]: for tests and the self-check. */
export async function denseDecodeOnHost(
  ctx: GpuContext,
  input: HostDenseDecodeInput,
): Promise<Float32Array> {
  const { device } = ctx;
  const { kvLen, kv, numHeads, headDim, tokenGaps, keyBlocks } = input;
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
  const subset = tokenGaps ? { tokenGaps } : keyBlocks && { keyBlocks };
  const decode = createDenseDecode(ctx, input, buffers, undefined, subset);
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  decode.record(pass);
  pass.end();
  device.queue.submit([encoder.finish()]);
  const out = await readFloat32(device, buffers.out, numHeads * headDim);
  for (const buffer of [...Object.values(buffers), ...decode.scratch]) buffer.destroy();
  return out;
}
