/**
 * Quest decode on the GPU (src/methods/reference/quest.ts is the CPU reference it matches):
 *   shaders/attention/quest_summary.wgsl  per-page, per-KV-head channel min/max of the keys (in
 *                                         the cache's precision: f16 caches get f16 summaries),
 *   quest_score.wgsl                      bounds of the complete pages, summed over the GQA group,
 *   quest_select.wgsl                     top-K pages per KV head plus the current page, by a
 *                                         radix select (one workgroup per KV head),
 *   quest_rank_select.wgsl                or the same pages by counting every page's rank
 *                                         (all pairs, over many workgroups),
 *   dense_decode.wgsl (PAGE_LIST)         the dense split + reduce over the listed pages only.
 * Pages are logical pages of the sequence (the page table maps them to the pool), so the summaries
 * are indexed like the page table.
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
import { stepResources, type StepScratch } from '../gpu/scratch';
import type { RecordDispatches } from '../gpu/timer';
import {
  createDenseDecode,
  type DecodeBuffers,
  type DecodeParams,
  type DecodeTuning,
  type HostDecodeInput,
} from './denseDecode';
import { groupSize, type PagedKvLayout } from './layout';
import { packPagedPool, pagesFor } from './pagedKv';

const summaryWorkgroupSize = 64;
const scoreWorkgroupSize = 128;
/** Rounds of SLOTS pages each workgroup of quest_score scores (amortises its load of q). */
const scoreRounds = 4;
/**
 * Invocations of the selection (fewer where the device allows fewer). H200, 2026-12-02 (`npm run
 * bench -- --only quest --quest-select-sizes 256,512,1024`, 8-bit radix): 512 took 10.5 us at 32K
 * against 12.6 for 256 and 10.7 for 1024, and 8.5 us at 8K against 8.6 and 9.5.
 */
const defaultSelectWorkgroupSize = 512;
/** Most pages whose selection keys stay in workgroup memory (16 KiB: 64K tokens at 16 a page). */
const maxSelectCacheKeys = 4096;

/**
 * Key bits per radix level of the selection. H200, 2026-12-02, same runs: 8 bits took 10.5-10.6 us
 * at 32K against 12.4-12.7 for 4, and 8.5 at 8K against 9.6-9.8.
 */
const defaultSelectDigitBits = 8;

/**
 * Most complete pages per KV head for which the selection counts ranks; above, the radix select.
 * H100, 2026-12-07 (`npm run bench -- --quick --only quest`), budget 2048: at 8K (511 pages) the
 * rank count took 4.7 us against the radix's 8.7 (the step 0.0196 against 0.0235 ms, 1.04x against
 * 0.87x dense); at 32K (2,047 pages) 24.7 us against 10.7 (its all-pairs work grows as pages^2).
 * Two pages an invocation (same H100, session 30): 4.9 us at 8K as with one, 7.3 us at 16K (1,023
 * pages) against the radix's 7.7 and one page's 9.2, 18.1 us at 32K against 10.8.
 */
const rankSelectMaxPages = 1024;

/** quest_rank_select's page slots and invocations per slot a workgroup, keys staged a round. */
const rankSlots = 16;
const rankLanes = 16;
const rankTile = 2048;
/**
 * Pages each invocation of quest_rank_select ranks (RUN). Same H100 runs, budget 2048: at 32K 1, 2,
 * 4 and 8 pages took 25.6, 18.1, 15.8 and 15.2 us, at 16K 9.2, 7.3, 7.5 and 9.7, at 8K 4.9, 4.9,
 * 5.3 and 7.0.
 */
const defaultRankRun = 2;

/** The key cache of quest_select.wgsl that fits beside its histogram and scan (>= 32 keys). */
function selectCacheKeys(ctx: GpuContext, selectWorkgroupSize: number, digitBits: number): number {
  const histogramBytes = 2 * (1 << digitBits) * 4 + ((1 << digitBits) / 16) * 4;
  const free = ctx.caps.maxWorkgroupStorageBytes - selectWorkgroupSize * 8 - histogramBytes - 64;
  return Math.max(32, Math.min(maxSelectCacheKeys, Math.floor(free / 4 / 32) * 32));
}

/** Where the summary kernel reads keys from. */
export interface QuestKeySource {
  kPool: GPUBuffer;
  pageTable: GPUBuffer;
}

export interface QuestSummaries {
  /** [page][kvHead][min | max][dim], numPages pages: f32, or f16 pairs in u32 for an f16 cache. */
  buffer: GPUBuffer;
  numPages: number;
  /**
   * Encodes the recomputation of pages [firstPage, lastPage) from the first kvLen tokens (after an
   * append: only the pages the new tokens touched). The range goes to a uniform now, so submit the
   * recorded dispatch before the next call.
   */
  recordUpdate(firstPage: number, lastPage: number, kvLen: number): RecordDispatches;
  dispose(): void;
}

export function createQuestSummaries(
  ctx: GpuContext,
  layout: PagedKvLayout,
  numPages: number,
  source: QuestKeySource,
): QuestSummaries {
  const { device } = ctx;
  const { numKvHeads, headDim } = layout;
  const bytesPerValue = layout.dtype === 'f16' ? 2 : 4;
  const buffer = createEmptyBuffer(
    device,
    numPages * numKvHeads * 2 * headDim * bytesPerValue,
    'quest page summaries',
  );
  const pipeline = ctx.pipelines.get('attention/quest_summary', {
    HEAD_DIM: headDim,
    NUM_KV_HEADS: numKvHeads,
    PAGE_SIZE: layout.pageSize,
    KV_F16: layout.dtype === 'f16',
    WORKGROUP_SIZE: summaryWorkgroupSize,
  });
  const uniforms = createUniformBuffer(device, [0, 0], [], 'quest summary params');
  const group = bindGroup(device, pipeline, [uniforms, source.kPool, source.pageTable, buffer]);
  return {
    buffer,
    numPages,
    recordUpdate(firstPage, lastPage, kvLen) {
      if (!(0 <= firstPage && firstPage <= lastPage && lastPage <= numPages)) {
        throw new Error(`quest summaries: bad page range [${firstPage}, ${lastPage})`);
      }
      device.queue.writeBuffer(uniforms, 0, new Uint32Array([firstPage, kvLen]));
      return (pass) => {
        if (lastPage === firstPage) return;
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(lastPage - firstPage, numKvHeads);
      };
    },
    dispose() {
      buffer.destroy();
      uniforms.destroy();
    },
  };
}

export interface QuestDecodeParams extends DecodeParams {
  /** A multiple of the page size: tokenBudget / pageSize pages, plus the current page. */
  tokenBudget: number;
}

export interface QuestDecodeBuffers extends DecodeBuffers {
  /** QuestSummaries.buffer, up to date for the first kvLen tokens. */
  summaries: GPUBuffer;
  /** Where the selection counts each KV head's pages (u32 each); the decode's own when absent. */
  pageCounts?: GPUBuffer;
}

/** Pages each KV head reads: the budget's complete pages (or all of them), plus the current one. */
export function questListLength(params: QuestDecodeParams): number {
  const { kvLen, tokenBudget, kv } = params;
  if (tokenBudget % kv.pageSize !== 0 || tokenBudget < 0) {
    throw new Error(`tokenBudget (${tokenBudget}) must be a multiple of pageSize (${kv.pageSize})`);
  }
  const numFull = pagesFor(kvLen, kv.pageSize) - 1;
  return Math.min(tokenBudget / kv.pageSize, numFull) + 1;
}

/** How the top-K pages are found: rank counting or a radix select (the same pages). */
export type QuestSelection = 'radix' | 'rank';

/** Knobs the benchmark may vary; the defaults are what the method uses. */
export interface QuestTuning {
  /** The selection kernel (default: 'rank' up to 1,024 complete pages a KV head, else 'radix'). */
  selection?: QuestSelection;
  /** Pages each invocation of the rank-counting selection ranks (default 2). */
  rankRun?: 1 | 2 | 4 | 8;
  /** Invocations of the selection's one workgroup per KV head (a power of two >= 32). */
  selectWorkgroupSize?: number;
  /** Key bits the selection's radix resolves per level: 4 (16 bins) or 8 (256 bins). */
  selectDigitBits?: 4 | 8;
  /**
   * Most pages whose keys the selection keeps in workgroup memory (a multiple of 32; default: what
   * fits, at most 4,096). Heads with more pages read their bounds from global memory at every pass.
   */
  selectCacheKeys?: number;
  /** The split plan of the sparse decode over the listed pages. */
  decode?: DecodeTuning;
}

export interface QuestDecode {
  /** The whole step: recordPlanner, then recordAttention. */
  record: RecordDispatches;
  /** Page scoring and top-K selection alone (benchmarks time it apart). */
  recordPlanner: RecordDispatches;
  /** The planner's two dispatches one by one, for the benchmark's breakdown. */
  recordScore: RecordDispatches;
  recordSelect: RecordDispatches;
  /** The sparse decode (split + reduce) over the pages the planner listed. */
  recordAttention: RecordDispatches;
  /**
   * u32 [kvHead][listLength]: pages read, the current one last; the others ascending (radix) or
   * by rank, highest bound first (rank).
   */
  selectedPages: GPUBuffer;
  /** u32 [kvHead]: the list lengths as the selection kernel counted them. */
  pageCounts: GPUBuffer;
  listLength: number;
  dispose(): void;
}

/**
 * Scoring, selection and the decode of the listed pages; the bounds, the page list, the uniforms,
 * the decode's partials and the bind groups come from `stepScratch` when given (a model step's
 * layers share them, and the next step reuses them).
 */
export function recordQuestDecode(
  ctx: GpuContext,
  params: QuestDecodeParams,
  buffers: QuestDecodeBuffers,
  tuning: QuestTuning = {},
  stepScratch?: StepScratch,
): QuestDecode {
  const selectWorkgroupSize =
    tuning.selectWorkgroupSize ??
    Math.min(defaultSelectWorkgroupSize, ctx.caps.maxInvocationsPerWorkgroup);
  if (selectWorkgroupSize > ctx.caps.maxInvocationsPerWorkgroup) {
    throw new Error(
      `quest: a ${selectWorkgroupSize}-invocation selection exceeds this device's ${ctx.caps.maxInvocationsPerWorkgroup}`,
    );
  }
  const { device } = ctx;
  const { numKvHeads, headDim, kvLen, kv } = params;
  const group = groupSize(params);
  const listLength = questListLength(params);
  const numFull = pagesFor(kvLen, kv.pageSize) - 1;
  // The decode walks the listed tokens: complete pages, then the current page's kvLen - current*P.
  const listedTokens = (listLength - 1) * kv.pageSize + (kvLen - numFull * kv.pageSize);

  const owned: GPUBuffer[] = [];
  const resources = stepResources(device, stepScratch, owned);
  const bounds = resources.buffer('quest bounds', numKvHeads * numFull * 4);
  const selectedPages = resources.buffer('quest pages', numKvHeads * listLength * 4);
  // Not the step's shared scratch: the model reads each layer's counts back after the step.
  let pageCounts = buffers.pageCounts;
  if (!pageCounts) {
    pageCounts = createEmptyBuffer(device, numKvHeads * 4, 'quest page counts');
    owned.push(pageCounts);
  }
  const scoreUniforms = resources.uniform('quest score params', [numFull]);
  const selectUniforms = resources.uniform('quest select params', [
    numFull,
    params.tokenBudget / kv.pageSize,
    listLength,
  ]);
  const summaryF16 = kv.dtype === 'f16';
  const valuesPerVector = summaryF16 ? 8 : 4;
  if (headDim % valuesPerVector !== 0) {
    throw new Error(`quest: headDim (${headDim}) must be a multiple of ${valuesPerVector}`);
  }
  // Lanes per page: one 16-byte vector of the summaries each (a power of two, at most the group).
  let lanes = 1;
  while (lanes < Math.min(headDim / valuesPerVector, scoreWorkgroupSize)) lanes *= 2;
  const pagesPerGroup = (scoreWorkgroupSize / lanes) * scoreRounds;
  const score = ctx.pipelines.get('attention/quest_score', {
    HEAD_DIM: headDim,
    NUM_KV_HEADS: numKvHeads,
    GROUP: group,
    LANES: lanes,
    WORKGROUP_SIZE: scoreWorkgroupSize,
    ROUNDS: scoreRounds,
    SUMMARY_F16: summaryF16,
  });
  const selectDigitBits = tuning.selectDigitBits ?? defaultSelectDigitBits;
  const byRank =
    (tuning.selection ?? (numFull <= rankSelectMaxPages ? 'rank' : 'radix')) === 'rank';
  const rankRun = tuning.rankRun ?? defaultRankRun;
  const select = byRank
    ? ctx.pipelines.get('attention/quest_rank_select', {
        SLOTS: rankSlots,
        LANES: rankLanes,
        RUN: rankRun,
        TILE: rankTile,
      })
    : ctx.pipelines.get('attention/quest_select', {
        WORKGROUP_SIZE: selectWorkgroupSize,
        CACHE_KEYS: Math.min(
          tuning.selectCacheKeys ?? maxSelectCacheKeys,
          selectCacheKeys(ctx, selectWorkgroupSize, selectDigitBits),
        ),
        DIGIT_BITS: selectDigitBits,
      });
  const scoreGroup = resources.bindGroup(score, [
    scoreUniforms,
    buffers.q,
    buffers.summaries,
    bounds,
  ]);
  const selectGroup = resources.bindGroup(select, [
    selectUniforms,
    bounds,
    selectedPages,
    pageCounts,
  ]);
  const decode = createDenseDecode(
    ctx,
    { ...params, kvLen: listedTokens },
    buffers,
    tuning.decode,
    { pageList: { buffer: selectedPages, listLen: listLength } },
    stepScratch,
  );
  const recordScore: RecordDispatches = (pass) => {
    if (numFull === 0) return;
    pass.setPipeline(score);
    pass.setBindGroup(0, scoreGroup);
    pass.dispatchWorkgroups(Math.ceil(numFull / pagesPerGroup), numKvHeads);
  };
  const recordSelect: RecordDispatches = (pass) => {
    pass.setPipeline(select);
    pass.setBindGroup(0, selectGroup);
    if (byRank) {
      pass.dispatchWorkgroups(Math.max(1, Math.ceil(numFull / (rankSlots * rankRun))), numKvHeads);
    } else {
      pass.dispatchWorkgroups(numKvHeads);
    }
  };
  const recordPlanner: RecordDispatches = (pass) => {
    recordScore(pass);
    recordSelect(pass);
  };
  return {
    record: (pass) => {
      recordPlanner(pass);
      decode.record(pass);
    },
    recordPlanner,
    recordScore,
    recordSelect,
    recordAttention: decode.record,
    selectedPages,
    pageCounts,
    listLength,
    dispose() {
      for (const buffer of [...owned, ...decode.scratch]) buffer.destroy();
    },
  };
}

export interface QuestHostInput extends HostDecodeInput {
  tokenBudget: number;
  tuning?: QuestTuning;
}

export interface QuestHostResult {
  /** [head][dim] */
  out: Float32Array;
  /** selectedPages[kvHead]: pages read, ascending whatever the kernel's order (the current included). */
  selectedPages: number[][];
  /** Pages read over all KV heads, as the selection kernel counted them. */
  pagesRead: number;
}

/** Uploads, builds the summaries, runs once and reads back: for tests and the self-check. */
export async function questDecodeOnHost(
  ctx: GpuContext,
  input: QuestHostInput,
): Promise<QuestHostResult> {
  const { device } = ctx;
  const { kvLen, kv, numHeads, numKvHeads, headDim } = input;
  const numPages = pagesFor(kvLen, kv.pageSize);
  const pageTable = input.pageTable ?? Uint32Array.from({ length: numPages }, (_, i) => i);
  const buffers: DecodeBuffers = {
    q: createStorageBuffer(device, input.q, 'quest q'),
    kPool: createStorageBuffer(device, packPagedPool(input.k, kvLen, kv, pageTable).data, 'k'),
    vPool: createStorageBuffer(device, packPagedPool(input.v, kvLen, kv, pageTable).data, 'v'),
    pageTable: createStorageBuffer(device, pageTable, 'quest page table'),
    out: createEmptyBuffer(device, numHeads * headDim * 4, 'quest out'),
  };
  const summaries = createQuestSummaries(ctx, kv, numPages, buffers);
  const update = summaries.recordUpdate(0, numPages, kvLen);
  const decode = recordQuestDecode(
    ctx,
    input,
    { ...buffers, summaries: summaries.buffer },
    input.tuning,
  );
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  update(pass);
  decode.record(pass);
  pass.end();
  device.queue.submit([encoder.finish()]);
  const out = await readFloat32(device, buffers.out, numHeads * headDim);
  const { listLength } = decode;
  const lists = new Uint32Array(
    await readBuffer(device, decode.selectedPages, numKvHeads * listLength * 4),
  );
  const counts = new Uint32Array(await readBuffer(device, decode.pageCounts, numKvHeads * 4));
  decode.dispose();
  summaries.dispose();
  for (const buffer of Object.values(buffers)) buffer.destroy();
  return {
    out,
    selectedPages: Array.from({ length: numKvHeads }, (_, g) =>
      Array.from(lists.subarray(g * listLength, (g + 1) * listLength)).sort((a, b) => a - b),
    ),
    pagesRead: counts.reduce((n, c) => n + c, 0),
  };
}
