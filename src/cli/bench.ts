/**
 * `npm run bench`: times our kernels on whatever WebGPU adapter Node finds (Dawn), with timestamp
 * queries after a warm-up, and reports each as a ratio to a ceiling measured in the same run:
 * decode KV bandwidth against the vec4 copy kernel's bandwidth, prefill TFLOP/s (2 L^2 h d for
 * causal attention) against the adapter's nominal fp32 peak when known.
 *
 *   npm run bench -- [--quick] [--json results.json] [--tune] [--lengths 8192,16384,..]
 *                    [--only copy,prefill,decode,methods,sparse,quest,blasst,model]
 *                    [--sparsities 0.5,0.9] [--methods sliding_window,user_pattern]
 *                    [--mask-mod SOURCE] [--blasst-splits 4,8]
 *                    [--blasst-phase prefill|decode] [--blasst-curve] [--quest-select-sizes 256,1024]
 *                    [--quest-decode-workgroups 64,128]
 *
 * copy: the ceilings (vec4 copy bandwidth, FMA peak) and the floor (a dependent dispatch's fixed
 * cost, with 1 and 4096 workgroups).
 * methods: every method of the registry at sparsity 0.5, 0.8, 0.9, 0.95 next to dense, through the
 * model's own path (benchMethods.ts), GPU planner apart from kernel, CPU planner time, counted
 * sparsity.
 * sparse: block-sparse (even masks), sliding-window and Vertical-Slash (structured inputs) prefill
 * at sparsity 0.5, 0.8, 0.9, 0.95 next to dense at the same size, planner apart from kernel, with
 * the sparsity the kernels counted.
 * quest: Quest decode at the same sparsities and at a 2048-token budget, each dispatch also timed
 * alone, with the time its bytes would take at the copy bandwidth (run with copy for that).
 * blasst: BLASST prefill and split-K decode on structured inputs, both visit orders, lambda chosen
 * so that the kernel's counters show 70-80% of blocks skipped.
 * model: a model of SmolLM2-135M's shape with random weights through the runtime (prefill at 4K,
 * decode at 1K and 8K tokens), for tools/torch_model_bench.py to compare with; then its 4K prefill
 * with each sparse prefill method, and its decode at 8K with each sparse decode method, at s = 0.9.
 * --sparsities replaces the target sparsities of the methods and sparse rows (0.5, 0.8, 0.9, 0.95);
 * --methods keeps only the listed methods of the methods section and of the model's method rows;
 * --mask-mod gives the user pattern there a source of one's own (its `window` still follows the
 * target sparsity);
 * --lengths replaces the methods, sparse and BLASST lengths (by default 8K..64K for the methods in
 * both phases; prefill 8K and 16K, decode 8K..64K for the others);
 * --blasst-splits repeats the BLASST decode rows for each blocks-per-split value; --blasst-curve
 * times every lambda of the calibration as well (time against the skipped share).
 *
 * --tune times variants of each kernel's tiling at one size instead, to choose the defaults.
 */
import { writeFileSync } from 'node:fs';
import { createEmptyBuffer } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import { acquireNodeGpuContext } from '../gpu/node';
import { timeDispatches, type RecordDispatches } from '../gpu/timer';
import { readBuffer } from '../gpu/buffers';
import {
  blasstPrefillCountsBytes,
  blasstPrefillTileConfig,
  createBlasstDecode,
  createBlasstPrefill,
  type BlasstDecodeOptions,
} from '../kernels/blasst';
import {
  blockSparseTileConfig,
  recordBlockSparsePrefill,
  type BlockSparseTileConfig,
} from '../kernels/blockSparsePrefill';
import { recordCopy, recordDispatchChainLink, recordFmaPeak } from '../kernels/copy';
import {
  planBlockSparseOnGpu,
  planVerticalSlashOnGpu,
  verticalSlashMaskFromGrid,
} from '../kernels/planners';
import { createQuestSummaries, recordQuestDecode, type QuestTuning } from '../kernels/quest';
import { METHODS, methodsFor } from '../methods/registry';
import { parseModelConfig, type ModelConfig } from '../model/loading/config';
import type { CpuLinear, CpuModel, CpuNorm } from '../model/runtime/cpuModel';
import { createModel } from '../model/runtime/model';
import type { BlasstOrder } from '../methods/reference/blasst';
import { blockMaskFromLists } from '../methods/reference/masks';
import { slidingWindow } from '../methods/reference/slidingWindow';
import { decodeSplitPlan, recordDenseDecode, type DecodeTuning } from '../kernels/denseDecode';
import {
  prefillTileConfig,
  recordDensePrefill,
  type PrefillTileConfig,
} from '../kernels/densePrefill';
import type { AttentionShape, KvDtype } from '../kernels/layout';
import {
  attentionInputs,
  filledFloats,
  pageSize,
  structuredInputs,
  type BenchRow,
} from './benchCommon';
import { benchMethods } from './benchMethods';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
};
const quick = flag('quick');
const sections = ['copy', 'prefill', 'decode', 'methods', 'sparse', 'quest', 'blasst', 'model'];
const only = new Set((option('only') ?? sections.join(',')).split(','));
for (const section of only) {
  if (!sections.includes(section)) {
    throw new Error(`--only takes a comma list of ${sections.join(', ')}; got '${section}'`);
  }
}

const shapes: { name: string; shape: AttentionShape }[] = [
  { name: '32h/8kv d128', shape: { numHeads: 32, numKvHeads: 8, headDim: 128 } },
  { name: '12h/12kv d64', shape: { numHeads: 12, numKvHeads: 12, headDim: 64 } },
];
const prefillLengths = quick ? [256, 1024] : [1024, 4096, 8192, 16384];

/** --lengths a,b,..: the lengths of the sparse and BLASST rows (prefill and decode alike). */
function parseLengths(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const lengths = text.split(',').map(Number);
  for (const length of lengths) {
    if (!Number.isInteger(length) || length < 128 || length % 64 !== 0) {
      throw new Error(
        `--lengths takes token counts, multiples of 64 and >= 128, separated by commas (e.g. 8192,16384); got '${text}'`,
      );
    }
  }
  return lengths;
}
const lengthsOption = parseLengths(option('lengths'));
const sparsePrefillLengths = lengthsOption ?? (quick ? [1024] : [8192, 16384]);
const sparseDecodeLengths = lengthsOption ?? (quick ? [2048] : [8192, 16384, 32768, 65536]);
/** The methods section covers 8K to 64K in both phases (prefill at 64K: about 3 GB of buffers). */
const methodsPrefillLengths = lengthsOption ?? (quick ? [1024] : sparseDecodeLengths);
const decodeLengths = quick ? [1024, 4096] : [4096, 16384, 32768, 65536];

/**
 * Calls `measure` until three results in a row agree (the slowest of them within 5% of the
 * fastest), at most 12 times; the median of those three. Right after the GPU idled its clocks are
 * down: short kernels ran up to 4x slower on the H100 than after a longer warm-up, and after
 * seconds of CPU planning (a mask_mod per head at 8K) rows read 1.7-3.7x slow through a fixed 100 ms
 * warm-up and three windows, where the same kernel on the same mask read its usual time after a
 * short pause (H100, sessions 23 and 24).
 */
async function untilSettled<T>(
  measure: (attempt: number) => Promise<T>,
  msOf: (result: T) => number,
): Promise<T> {
  const settledSpread = 0.05;
  const maxAttempts = 12;
  const results: T[] = [];
  let lastThree: T[] = [];
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    results.push(await measure(attempt));
    lastThree = results.slice(-3).sort((a, b) => msOf(a) - msOf(b));
    if (lastThree.length === 3 && msOf(lastThree[2]) <= msOf(lastThree[0]) * (1 + settledSpread)) {
      break;
    }
  }
  return lastThree[1];
}

/**
 * Timed windows of about 300 ms each (100 ms with --quick) after about 200 ms (100) of the same
 * work, until they settle (untilSettled).
 */
async function timeAdaptive(ctx: GpuContext, record: RecordDispatches): Promise<number> {
  const probe = await timeDispatches(ctx, record, { warmup: 1, repeats: 1 });
  let perRepeat = Math.max(probe.ms, 1e-3);
  const count = (ms: number) => Math.max(3, Math.min(2000, Math.ceil(ms / perRepeat)));
  // --quick: shorter windows, to keep the whole run under a minute.
  const [warmupMs, windowMs] = quick ? [100, 100] : [200, 300];
  return untilSettled(
    async (window) => {
      const warmup = window === 0 ? count(warmupMs) : 1;
      const ms = (await timeDispatches(ctx, record, { warmup, repeats: count(windowMs) })).ms;
      perRepeat = Math.max(ms, 1e-3);
      return ms;
    },
    (ms) => ms,
  );
}
async function benchCopy(ctx: GpuContext): Promise<BenchRow> {
  const bytes = Math.min(quick ? 16 << 20 : 512 << 20, ctx.caps.maxStorageBufferBindingSize);
  const src = createEmptyBuffer(ctx.device, bytes);
  const dst = createEmptyBuffer(ctx.device, bytes);
  const ms = await timeAdaptive(ctx, recordCopy(ctx, src, dst));
  src.destroy();
  dst.destroy();
  return {
    kernel: 'copy vec4',
    shape: `${bytes >> 20} MiB`,
    length: bytes,
    ms,
    gbPerSecond: (2 * bytes) / (ms * 1e6),
  };
}

/**
 * The fixed cost of one dependent dispatch (each waits for the one before): one workgroup, and as
 * many as the copy kernel launches (a grid the whole GPU works on). A step of n short dispatches
 * takes at least n times this, whatever its bytes.
 */
async function benchDispatchFloor(ctx: GpuContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const workgroups of [1, 4096]) {
    const cells = createEmptyBuffer(ctx.device, workgroups * 256 * 4);
    const ms = await timeAdaptive(ctx, recordDispatchChainLink(ctx, cells, workgroups));
    cells.destroy();
    rows.push({
      kernel: 'dependent dispatch',
      shape: `${workgroups} x 256 threads`,
      length: 0,
      ms,
    });
  }
  return rows;
}

async function benchFmaPeak(ctx: GpuContext): Promise<BenchRow> {
  const invocations = 132 * 2048 * 4;
  const sink = createEmptyBuffer(ctx.device, invocations * 16);
  const { record, flops } = recordFmaPeak(ctx, sink);
  const ms = await timeAdaptive(ctx, record);
  sink.destroy();
  return {
    kernel: 'fma peak',
    shape: `${invocations} threads`,
    length: 0,
    ms,
    tflops: flops / (ms * 1e9),
  };
}

async function benchPrefill(
  ctx: GpuContext,
  name: string,
  shape: AttentionShape,
  length: number,
  config = prefillTileConfig(ctx, shape.headDim),
): Promise<BenchRow> {
  const inputs = attentionInputs(ctx, shape, length, 'prefill', 'f32');
  const ms = await timeAdaptive(
    ctx,
    recordDensePrefill(ctx, inputs.prefill, inputs.buffers, config),
  );
  inputs.destroy();
  const flops = 2 * length * length * shape.numHeads * shape.headDim;
  return {
    kernel: 'dense prefill',
    shape: name,
    length,
    kvDtype: 'f32' as const,
    ms,
    tflops: flops / (ms * 1e9),
    config,
  };
}

async function benchDecode(
  ctx: GpuContext,
  name: string,
  shape: AttentionShape,
  length: number,
  dtype: KvDtype,
  copyGbPerSecond: number | undefined,
  tuning?: DecodeTuning,
): Promise<BenchRow> {
  const inputs = attentionInputs(ctx, shape, length, 'decode', dtype);
  const params = inputs.decode;
  const ms = await timeAdaptive(ctx, recordDenseDecode(ctx, params, inputs.buffers, tuning));
  inputs.destroy();
  const kvBytes = 2 * length * shape.numKvHeads * shape.headDim * (dtype === 'f16' ? 2 : 4);
  const gbPerSecond = kvBytes / (ms * 1e6);
  return {
    kernel: 'dense decode',
    shape: name,
    length,
    kvDtype: dtype,
    ms,
    gbPerSecond,
    shareOfCopy: copyGbPerSecond ? gbPerSecond / copyGbPerSecond : undefined,
    config: decodeSplitPlan(ctx, params, tuning),
  };
}

function printTable(rows: BenchRow[]) {
  const fmt = (value: number | undefined, digits: number) =>
    value === undefined ? '' : value.toFixed(digits);
  const lines = rows.map((r) => [
    r.kernel,
    r.shape,
    String(r.length),
    r.kvDtype ?? '',
    fmt(r.ms, 4),
    fmt(r.tflops, 2),
    fmt(r.gbPerSecond, 1),
    r.shareOfCopy === undefined ? '' : `${(100 * r.shareOfCopy).toFixed(1)}%`,
    fmt(r.targetSparsity, 2),
    fmt(r.measuredSparsity, 3),
    fmt(r.plannerMs, 4),
    fmt(r.plannerCpuMs, 1),
    r.speedup === undefined ? '' : `${r.speedup.toFixed(2)}x`,
    r.speedupWithPlanner === undefined ? '' : `${r.speedupWithPlanner.toFixed(2)}x`,
    fmt(r.tokensPerSecond, 1),
    fmt(r.wallTokensPerSecond, 1),
  ]);
  const header = [
    'kernel',
    'shape',
    'L',
    'kv',
    'ms',
    'TFLOP/s',
    'GB/s',
    'of copy',
    's asked',
    's counted',
    'planner ms',
    'planner CPU ms',
    'vs dense',
    'with planner',
    'tok/s GPU',
    'tok/s wall',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  for (const line of [header, ...lines]) {
    console.log(line.map((cell, i) => cell.padEnd(widths[i])).join('  '));
  }
}

/** --sparsities a,b,..: the target sparsities of the methods and sparse rows. */
function parseSparsities(text: string | undefined): number[] {
  if (text === undefined) return [0.5, 0.8, 0.9, 0.95];
  const values = text.split(',').map(Number);
  if (!values.every((s) => s >= 0 && s <= 0.95)) {
    throw new Error(`--sparsities takes numbers in [0, 0.95] separated by commas; got '${text}'`);
  }
  return values;
}
const sparsities = parseSparsities(option('sparsities'));
const sparseBlock = 64;

/** Each query block keeps its diagonal block, block 0 and (1 - s) of its causal blocks, evenly. */
function evenBlockMask(numHeads: number, length: number, s: number) {
  const geometry = { numHeads, numQueries: length, qStart: 0 };
  return blockMaskFromLists({ ...geometry, blockQ: sparseBlock, blockK: sparseBlock }, (_h, qb) => {
    const keep = Math.max(Math.min(2, qb + 1), Math.round((1 - s) * (qb + 1)));
    const picked = new Set([qb, 0]);
    for (let i = 0; picked.size < keep; i++) picked.add(Math.floor((i * (qb + 1)) / keep));
    return [...picked];
  });
}

/**
 * Block-sparse prefill at a target sparsity: each query block keeps its diagonal block, the first
 * block and, spread evenly, enough others for (1 - s) of its causal blocks. The kernel's speed
 * depends on how many blocks it visits, not on which, so an even spread stands for any planner.
 * The planner is timed apart: Block-Sparse's (mean pooling, scores, top-k) at the same budget.
 */
async function benchBlockSparse(ctx: GpuContext, shape: AttentionShape, length: number) {
  const inputs = attentionInputs(ctx, shape, length, 'prefill', 'f32');
  const { buffers, prefill: params } = inputs;
  const { q, kPool, pageTable } = buffers;
  const denseMs = await timeAdaptive(ctx, recordDensePrefill(ctx, params, buffers));
  const rows: BenchRow[] = [];
  const numBlocks = Math.ceil(length / sparseBlock);
  const counts = createEmptyBuffer(ctx.device, shape.numHeads * numBlocks * 4);
  for (const s of sparsities) {
    const mask = evenBlockMask(shape.numHeads, length, s);
    const sparse = recordBlockSparsePrefill(ctx, params, mask, { ...buffers, counts });
    const ms = await timeAdaptive(ctx, sparse.record);
    const touched = new Uint32Array(await readBuffer(ctx.device, counts)).reduce((a, b) => a + b);
    const causal = (shape.numHeads * numBlocks * (numBlocks + 1)) / 2;
    // The planner needs room for its 3 forced blocks per row.
    const topChunks = Math.max(3, Math.round((1 - s) * numBlocks));
    const planner = planBlockSparseOnGpu(
      ctx,
      params,
      { q, kPool, pageTable },
      {
        topChunks,
        blockSize: sparseBlock,
      },
    );
    const plannerMs = await timeAdaptive(ctx, planner.record);
    planner.destroy();
    sparse.dispose();
    rows.push({
      kernel: 'block-sparse prefill',
      shape: '32h/8kv d128',
      length,
      kvDtype: 'f32',
      ms,
      targetSparsity: s,
      measuredSparsity: 1 - touched / causal,
      plannerMs,
      speedup: denseMs / ms,
      tflops: (2 * length * length * shape.numHeads * shape.headDim) / (denseMs * 1e9),
    });
  }
  counts.destroy();
  inputs.destroy();
  return { denseMs, rows };
}

/**
 * Quest decode at a token budget: scoring the page bounds, top-K and decoding the chosen pages,
 * all in the timed record (planner included: `ms` and `vs dense` are the whole step), against
 * dense decode over the same f16 cache. Each dispatch is also timed alone (scoring, selection, the
 * sparse split + reduce: config), and the bytes the step reads (summaries, chosen pages, q) give
 * the time it would take at the copy bandwidth of the same run (config.floorMs). The 2048-token
 * budget is repeated for each --quest-select-sizes value (the selection's workgroup size).
 */
async function benchQuest(
  ctx: GpuContext,
  shape: AttentionShape,
  length: number,
  copyGbPerSecond: number | undefined,
) {
  const inputs = attentionInputs(ctx, shape, length, 'decode', 'f16');
  const { buffers, decode: params, kv, pages } = inputs;
  const { kPool, pageTable } = buffers;
  const denseMs = await timeAdaptive(ctx, recordDenseDecode(ctx, params, buffers));
  const summaries = createQuestSummaries(ctx, kv, pages, { kPool, pageTable });
  const encoder = ctx.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  summaries.recordUpdate(0, pages, length)(pass);
  pass.end();
  ctx.device.queue.submit([encoder.finish()]);
  const runs: { tokenBudget: number; tuning: QuestTuning }[] = [
    ...sparsities.map((s) => ({
      tokenBudget: Math.max(pageSize, Math.round(((1 - s) * length) / pageSize) * pageSize),
      tuning: {},
    })),
    ...questSelectSizes
      .filter((size) => size === undefined || size <= ctx.caps.maxInvocationsPerWorkgroup)
      .map((selectWorkgroupSize) => ({
        tokenBudget: 2048,
        tuning: selectWorkgroupSize === undefined ? {} : { selectWorkgroupSize },
      })),
    ...questDecodeWorkgroups.map((targetWorkgroups) => ({
      tokenBudget: 2048,
      tuning: { decode: { targetWorkgroups } },
    })),
    // The default resolves 8 key bits per radix level; this row 4.
    { tokenBudget: 2048, tuning: { selectDigitBits: 4 as const } },
    // Each selection whatever the cache's length (the default picks by the pages per KV head).
    { tokenBudget: 2048, tuning: { selection: 'rank' as const } },
    { tokenBudget: 2048, tuning: { selection: 'radix' as const } },
    // The rank count with each invocation ranking 1, 4 or 8 pages (the default: 2).
    ...([1, 4, 8] as const).map((rankRun) => ({
      tokenBudget: 2048,
      tuning: { selection: 'rank' as const, rankRun },
    })),
  ];
  const bytesPerValue = 2;
  const summaryBytes = (pages - 1) * shape.numKvHeads * 2 * shape.headDim * bytesPerValue;
  const rows: BenchRow[] = [];
  for (const { tokenBudget, tuning } of runs) {
    const quest = recordQuestDecode(
      ctx,
      { ...params, tokenBudget },
      { ...buffers, summaries: summaries.buffer },
      tuning,
    );
    const ms = await timeAdaptive(ctx, quest.record);
    const plannerMs = await timeAdaptive(ctx, quest.recordPlanner);
    const scoreMs = await timeAdaptive(ctx, quest.recordScore);
    const selectMs = await timeAdaptive(ctx, quest.recordSelect);
    const attentionMs = await timeAdaptive(ctx, quest.recordAttention);
    const counted = new Uint32Array(await readBuffer(ctx.device, quest.pageCounts));
    const pagesRead = counted.slice(0, shape.numKvHeads).reduce((a, b) => a + b);
    quest.dispose();
    const bytes =
      summaryBytes +
      pagesRead * pageSize * 2 * shape.headDim * bytesPerValue +
      shape.numHeads * shape.headDim * 4;
    const floorMs = copyGbPerSecond ? bytes / (copyGbPerSecond * 1e6) : undefined;
    const variant =
      (tuning.selectWorkgroupSize ? `, ${tuning.selectWorkgroupSize}-wide select` : '') +
      (tuning.decode ? `, ${tuning.decode.targetWorkgroups} decode workgroups asked` : '') +
      (tuning.selectDigitBits ? `, ${tuning.selectDigitBits}-bit radix` : '') +
      (tuning.selection ? `, ${tuning.selection} select` : '') +
      (tuning.rankRun ? `, ${tuning.rankRun} pages an invocation` : '');
    console.error(
      `    quest budget ${tokenBudget}${variant}: scoring ${scoreMs.toFixed(4)} ms, selection ${selectMs.toFixed(4)} ms, ` +
        `decode ${attentionMs.toFixed(4)} ms (split + reduce); ${(bytes / 1e6).toFixed(1)} MB read` +
        (floorMs ? `, ${floorMs.toFixed(4)} ms at the copy bandwidth` : ''),
    );
    rows.push({
      kernel: `quest decode (budget ${tokenBudget}${variant})`,
      shape: '32h/8kv d128',
      length,
      kvDtype: 'f16',
      ms,
      targetSparsity: Math.max(0, 1 - tokenBudget / length),
      measuredSparsity: 1 - pagesRead / (shape.numKvHeads * pages),
      plannerMs,
      speedup: denseMs / ms,
      config: { plannerMs, scoreMs, selectMs, attentionMs, stepMs: ms, bytes, floorMs, ...tuning },
    });
  }
  summaries.dispose();
  inputs.destroy();
  return { denseMs, rows };
}

async function benchQuestSection(
  ctx: GpuContext,
  report: (row: BenchRow) => void,
  copyGbPerSecond: number | undefined,
) {
  for (const length of sparseDecodeLengths) {
    const { denseMs, rows } = await benchQuest(ctx, shapes[0].shape, length, copyGbPerSecond);
    console.error(`  dense decode f16 L=${length}: ${denseMs.toFixed(4)} ms (Quest rows compare)`);
    rows.forEach(report);
  }
}

/** Prefill's list: finer steps, so that the chosen skip share lands near 75% rather than 70. */
const blasstPrefillLambdas = [
  1e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2, 2e-2, 3e-2, 5e-2, 0.1, 0.2, 0.3, 0.5,
];
/**
 * Thresholds the decode calibration tries (the row reports the one the kernel's counters put
 * nearest): split-K decode with anchor blocks crosses 70-80% skipped between 5e-4 and 1e-3 on
 * the structured inputs (65%, 76% and 83% at 32K for 5e-4, 7e-4 and 1e-3, on the CPU).
 */
const blasstDecodeLambdas = [
  1e-5, 1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 0.5, 0.9,
];
const blasstOrders: BlasstOrder[] = ['natural', 'sink-recent-first'];
/** The issue's range for the skip rate: 70 to 80% of the blocks. */
const blasstSkipRange = [0.7, 0.8] as const;

async function runOnce(ctx: GpuContext, record: RecordDispatches) {
  const encoder = ctx.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass);
  pass.end();
  ctx.device.queue.submit([encoder.finish()]);
  await ctx.device.queue.onSubmittedWorkDone();
}

/** Skipped / (skipped + kept) from a [.. ][skipped, kept] u32 counts buffer. */
async function skippedShare(ctx: GpuContext, counts: GPUBuffer): Promise<number> {
  const words = new Uint32Array(await readBuffer(ctx.device, counts));
  let skipped = 0;
  let kept = 0;
  for (let i = 0; i < words.length; i += 2) {
    skipped += words[i];
    kept += words[i + 1];
  }
  return skipped / Math.max(1, skipped + kept);
}

/**
 * BLASST prefill or decode on structured inputs: per visit order, the lambda whose counted skip
 * rate lands in 70-80% (nearest 75%; else the nearest to the range), timed against dense on the
 * same buffers. Decode runs split-K over f16 KV.
 */
async function benchBlasst(
  ctx: GpuContext,
  shape: AttentionShape,
  length: number,
  phase: 'prefill' | 'decode',
  decodeSplits: Pick<BlasstDecodeOptions, 'blockTokens' | 'blocksPerSplit'> = {},
) {
  const dtype = phase === 'prefill' ? 'f32' : 'f16';
  const inputs = structuredInputs(ctx, shape, length, phase, dtype);
  const { buffers } = inputs;
  const tiles = blasstPrefillTileConfig(ctx, shape.headDim);
  const countsBytes =
    phase === 'prefill'
      ? blasstPrefillCountsBytes(inputs.prefill, tiles)
      : shape.numKvHeads * 2 * 4;
  const counts = createEmptyBuffer(ctx.device, countsBytes, 'blasst bench counts');
  const denseMs = await timeAdaptive(
    ctx,
    phase === 'prefill'
      ? recordDensePrefill(ctx, inputs.prefill, buffers)
      : recordDenseDecode(ctx, inputs.decode, buffers),
  );
  const build = (
    lambda: number,
    order: BlasstOrder,
  ): { record: RecordDispatches; scratch: GPUBuffer[] } =>
    phase === 'prefill'
      ? createBlasstPrefill(ctx, inputs.prefill, { ...buffers, counts }, { lambda, order })
      : createBlasstDecode(ctx, inputs.decode, { ...buffers, counts }, { lambda, order, ...decodeSplits }); // prettier-ignore
  const rows: BenchRow[] = [];
  const [low, high] = blasstSkipRange;
  const mid = (low + high) / 2;
  const distance = (s: number) =>
    s < low ? low - s : s > high ? s - high : Math.abs(s - mid) / 10;
  const splits = Object.entries(decodeSplits).map(([key, value]) => `, ${key} ${value}`);
  const row = (
    label: string,
    lambda: number,
    order: BlasstOrder,
    ms: number,
    skipped: number,
  ): BenchRow => ({
    kernel: `BLASST ${phase}${label} (${order}, lambda ${lambda}${splits.join('')})`,
    shape: shapes[0].name,
    length,
    kvDtype: dtype,
    ms,
    measuredSparsity: skipped,
    speedup: denseMs / ms,
    config: { lambda, order, skippedShare: skipped, ...decodeSplits },
  });
  for (const order of blasstOrders) {
    let best = { lambda: 0, skipped: 0 };
    for (const lambda of phase === 'prefill' ? blasstPrefillLambdas : blasstDecodeLambdas) {
      const kernel = build(lambda, order);
      await runOnce(ctx, kernel.record);
      const skipped = await skippedShare(ctx, counts);
      if (blasstCurve) {
        rows.push(row(' curve', lambda, order, await timeAdaptive(ctx, kernel.record), skipped));
      }
      kernel.scratch.forEach((buffer) => buffer.destroy());
      if (distance(skipped) < distance(best.skipped)) best = { lambda, skipped };
    }
    const kernel = build(best.lambda, order);
    const ms = await timeAdaptive(ctx, kernel.record);
    const skipped = await skippedShare(ctx, counts);
    kernel.scratch.forEach((buffer) => buffer.destroy());
    rows.push(row('', best.lambda, order, ms, skipped));
  }
  counts.destroy();
  inputs.destroy();
  return { denseMs, rows };
}

/**
 * Vertical-Slash prefill on the structured inputs (its planner needs attention structure to find
 * columns and diagonals): the GPU planner (last-query estimate, top columns and diagonals, block
 * classes) timed apart, then the block-sparse kernel over its mask (full and partial blocks).
 * Budgets shrink with 1 - s (columns and diagonals each (1 - s) of the key blocks' count, at least
 * 4); the sparsity the kernel counted is what the row reports against.
 */
async function benchVerticalSlash(ctx: GpuContext, shape: AttentionShape, length: number) {
  const inputs = structuredInputs(ctx, shape, length, 'prefill', 'f32');
  const { buffers, prefill: params } = inputs;
  const denseMs = await timeAdaptive(ctx, recordDensePrefill(ctx, params, buffers));
  const numBlocks = Math.ceil(length / sparseBlock);
  const counts = createEmptyBuffer(ctx.device, shape.numHeads * numBlocks * 4);
  const causal = (shape.numHeads * numBlocks * (numBlocks + 1)) / 2;
  const rows: BenchRow[] = [];
  for (const s of sparsities) {
    const budget = Math.max(4, Math.round((1 - s) * numBlocks));
    const plan = planVerticalSlashOnGpu(ctx, params, buffers, {
      lastQ: 64,
      verticalSize: budget,
      slashSize: budget,
      blockQ: sparseBlock,
      blockK: sparseBlock,
    });
    const plannerMs = await timeAdaptive(ctx, plan.record);
    const { keyWords, numQueryBlocks, numKeyBlocks } = plan.outputs;
    const bits = new Uint32Array(
      await readBuffer(ctx.device, plan.outputs.bits, 2 * shape.numHeads * keyWords * 4),
    );
    const classes = new Uint32Array(
      await readBuffer(
        ctx.device,
        plan.outputs.classes,
        shape.numHeads * numQueryBlocks * numKeyBlocks * 4,
      ),
    );
    plan.destroy();
    const mask = verticalSlashMaskFromGrid(params, sparseBlock, sparseBlock, bits, classes);
    const sparse = recordBlockSparsePrefill(ctx, params, mask, { ...buffers, counts });
    const ms = await timeAdaptive(ctx, sparse.record);
    const touched = new Uint32Array(await readBuffer(ctx.device, counts)).reduce((a, b) => a + b);
    sparse.dispose();
    rows.push({
      kernel: `vertical-slash prefill (${budget} columns, ${budget} diagonals)`,
      shape: shapes[0].name,
      length,
      kvDtype: 'f32',
      ms,
      targetSparsity: s,
      measuredSparsity: 1 - touched / causal,
      plannerMs,
      speedup: denseMs / ms,
    });
  }
  counts.destroy();
  inputs.destroy();
  return { denseMs, rows };
}

/**
 * Sliding-window prefill (4 sink keys and a window of w keys, the method's rule evaluated per
 * element in partial blocks): no planner. A band of w keys covers 2x - x^2 of the causal triangle
 * (x = w / L), so w = (1 - sqrt(s)) L asks for sparsity s.
 */
async function benchSlidingWindow(ctx: GpuContext, shape: AttentionShape, length: number) {
  const inputs = attentionInputs(ctx, shape, length, 'prefill', 'f32');
  const { buffers, prefill: params } = inputs;
  const denseMs = await timeAdaptive(ctx, recordDensePrefill(ctx, params, buffers));
  const numBlocks = Math.ceil(length / sparseBlock);
  const counts = createEmptyBuffer(ctx.device, shape.numHeads * numBlocks * 4);
  const causal = (shape.numHeads * numBlocks * (numBlocks + 1)) / 2;
  const rows: BenchRow[] = [];
  for (const s of sparsities) {
    const window = Math.max(1, Math.round((1 - Math.sqrt(s)) * length));
    const mask = slidingWindow(
      { numHeads: shape.numHeads, numQueries: length, qStart: 0 },
      { window, sinks: 4, blockQ: sparseBlock, blockK: sparseBlock },
    );
    const sparse = recordBlockSparsePrefill(ctx, params, mask, { ...buffers, counts });
    const ms = await timeAdaptive(ctx, sparse.record);
    const touched = new Uint32Array(await readBuffer(ctx.device, counts)).reduce((a, b) => a + b);
    sparse.dispose();
    rows.push({
      kernel: `sliding-window prefill (window ${window}, 4 sinks)`,
      shape: shapes[0].name,
      length,
      kvDtype: 'f32',
      ms,
      targetSparsity: s,
      measuredSparsity: 1 - touched / causal,
      speedup: denseMs / ms,
    });
  }
  counts.destroy();
  inputs.destroy();
  return { denseMs, rows };
}

async function benchSparse(ctx: GpuContext, report: (row: BenchRow) => void) {
  const { shape } = shapes[0];
  for (const length of sparsePrefillLengths) {
    const { denseMs, rows } = await benchBlockSparse(ctx, shape, length);
    console.error(`  dense prefill L=${length}: ${denseMs.toFixed(3)} ms (sparse rows compare)`);
    rows.forEach(report);
    // The sliding-window mask is built on the CPU from the method's rule (several seconds at 16K
    // and 32 heads): the first length only.
    if (length === sparsePrefillLengths[0]) {
      (await benchSlidingWindow(ctx, shape, length)).rows.forEach(report);
    }
    const verticalSlash = await benchVerticalSlash(ctx, shape, length);
    console.error(
      `  dense prefill (structured) L=${length}: ${verticalSlash.denseMs.toFixed(3)} ms`,
    );
    verticalSlash.rows.forEach(report);
  }
}

/** --methods a,b,..: registry names of the methods section's methods to run. */
function methodNames(text: string | undefined): Set<string> | undefined {
  if (text === undefined) return undefined;
  const names = text.split(',');
  const known: string[] = METHODS.map((m) => m.name);
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new Error(
      `--methods: unknown ${unknown.join(', ')}; the registry has ${known.join(', ')}`,
    );
  }
  return new Set(names);
}
const maskModSource = option('mask-mod');

async function benchMethodsSection(ctx: GpuContext, report: (row: BenchRow) => void) {
  await benchMethods(ctx, {
    shape: shapes[0].shape,
    shapeName: shapes[0].name,
    prefillLengths: methodsPrefillLengths,
    decodeLengths: sparseDecodeLengths,
    sparsities,
    methodNames: methodNames(option('methods')),
    paramOverrides: maskModSource === undefined ? {} : { user_pattern: { source: maskModSource } },
    time: (record) => timeAdaptive(ctx, record),
    runOnce: (record) => runOnce(ctx, record),
    report,
  });
}

/** --blasst-splits a,b,..: BLASST decode rows per blocks-per-split value (default: the plan's). */
function parseBlasstSplits(text: string | undefined): (number | undefined)[] {
  if (text === undefined) return [undefined];
  const values = text.split(',').map(Number);
  if (!values.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new Error(`--blasst-splits takes whole numbers >= 1 separated by commas; got '${text}'`);
  }
  return values;
}
const blasstSplits = parseBlasstSplits(option('blasst-splits'));

/**
 * --blasst-curve: time every calibration lambda too, so the rows trace time against the skipped
 * share (what a skipped block costs next to a kept one).
 */
const blasstCurve = flag('blasst-curve');
/**
 * --quest-select-sizes a,b,..: the 2048-token Quest row once per selection workgroup size
 * (default: the method's own).
 */
const questSelectSizes = ((text: string | undefined) => {
  if (text === undefined) return [undefined];
  const values = text.split(',').map(Number);
  if (!values.every((v) => Number.isInteger(v) && v >= 32 && (v & (v - 1)) === 0)) {
    throw new Error(
      `--quest-select-sizes takes powers of two >= 32 separated by commas; got '${text}'`,
    );
  }
  return values;
})(option('quest-select-sizes'));
/**
 * --quest-decode-workgroups a,b,..: the 2048-token Quest row again with the sparse decode's split
 * plan aiming at each number of workgroups (the plan's default: 512, fitted to dense decode).
 */
const questDecodeWorkgroups = (option('quest-decode-workgroups') ?? '')
  .split(',')
  .filter((text) => text !== '')
  .map((text) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`--quest-decode-workgroups takes whole numbers >= 1; got '${text}'`);
    }
    return value;
  });
/** --blasst-phase prefill|decode: only that phase's BLASST rows. */
const blasstPhase = option('blasst-phase');
if (blasstPhase !== undefined && blasstPhase !== 'prefill' && blasstPhase !== 'decode') {
  throw new Error(`--blasst-phase takes prefill or decode; got '${blasstPhase}'`);
}

/** BLASST on structured inputs: prefill at the sparse prefill lengths, decode at the decode ones. */
async function benchBlasstSection(ctx: GpuContext, report: (row: BenchRow) => void) {
  const { shape } = shapes[0];
  for (const length of blasstPhase === 'decode' ? [] : sparsePrefillLengths) {
    const { denseMs, rows } = await benchBlasst(ctx, shape, length, 'prefill');
    console.error(`  dense prefill (structured) L=${length}: ${denseMs.toFixed(4)} ms`);
    rows.forEach(report);
  }
  for (const length of blasstPhase === 'prefill' ? [] : sparseDecodeLengths) {
    for (const blocksPerSplit of blasstSplits) {
      const splits = blocksPerSplit === undefined ? {} : { blocksPerSplit };
      const { denseMs, rows } = await benchBlasst(ctx, shape, length, 'decode', splits);
      console.error(`  dense decode (structured) L=${length}: ${denseMs.toFixed(4)} ms`);
      rows.forEach(report);
    }
  }
}

/**
 * The SmolLM2-135M shape (HuggingFaceTB/SmolLM2-135M's config.json) with random weights: our
 * runtime's tokens/s, next to tools/torch_model_bench.py (transformers, same shapes, fp32).
 */
const smolLm2Config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 49152,
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  head_dim: 64,
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  hidden_act: 'silu',
  tie_word_embeddings: true,
};
const modelShapeName = 'SmolLM2-135M shape, f32';
const modelDecodeContexts = quick ? [64] : [1024, 8192];
const modelPrefillLength = quick ? 64 : 4096;
const modelDecodeSteps = quick ? 2 : 32;
const modelWarmupSteps = 4;

/** Uniform weights with transformers' init std (0.02); norms at 1, as a fresh model has them. */
function randomLlama(config: ModelConfig): CpuModel {
  let seed = 10;
  const matrix = (rows: number, cols: number): CpuLinear => {
    const weight = filledFloats(rows * cols, seed++);
    for (let i = 0; i < weight.length; i++) weight[i] *= 0.02 * Math.sqrt(3);
    return { weight, bias: null, inFeatures: cols, outFeatures: rows };
  };
  const ones = (): CpuNorm => ({ weight: new Float32Array(config.hiddenSize).fill(1), bias: null });
  const { hiddenSize, numHeads, numKvHeads, headDim, intermediateSize } = config;
  return {
    config,
    embedTokens: matrix(config.vocabSize, hiddenSize).weight,
    positionEmbedding: null,
    layers: Array.from({ length: config.numLayers }, () => ({
      attnNorm: ones(),
      q: matrix(numHeads * headDim, hiddenSize),
      kv: matrix(2 * numKvHeads * headDim, hiddenSize),
      o: matrix(hiddenSize, numHeads * headDim),
      mlpNorm: ones(),
      mlpIn: matrix(2 * intermediateSize, hiddenSize),
      mlpOut: matrix(hiddenSize, intermediateSize),
    })),
    finalNorm: ones(),
    lmHead: null,
  };
}

const promptIds = (length: number, vocab: number) =>
  Array.from({ length }, (_, i) => (i * 7919 + 13) % vocab);

/**
 * Greedy generation as an app runs it (Model.generate: argmax on the GPU, 4 bytes read back per
 * token): decode tokens/s from the runtime's GPU time (timestamp queries) and from wall-clock time,
 * the latter between the first token reaching the caller (it comes from the prefill) and the last,
 * as tools/torch_model_bench.py times its decode loop. The decode steps of a context C see C - steps
 * to C - 1 cached tokens, there and here. Prefill tokens/s: one prompt through Model.prefill.
 */
async function benchModel(ctx: GpuContext, report: (row: BenchRow) => void) {
  const config = parseModelConfig(smolLm2Config);
  const cpu = randomLlama(config);
  // The decode rows end at their context length, so 8K fits SmolLM2's 8192 positions.
  const model = createModel(ctx, cpu, {
    maxSeqLen: Math.max(...modelDecodeContexts, modelPrefillLength),
  });
  const shape = modelShapeName;
  let densePrefillMs: number;
  let denseDecodeMs = NaN;
  /** Greedy tokens after the prompt, and when each reached the caller. */
  const generate = async (ids: number[], maxNewTokens: number) => {
    const arrivals: number[] = [];
    const result = await model.generate(ids, {
      maxNewTokens,
      stopTokens: [],
      onToken: () => void arrivals.push(performance.now()),
    });
    return { arrivals, result };
  };
  try {
    // Warm-up: compiles the pipelines of a full prefill chunk and of a decode step.
    const warmup = Math.min(model.prefillChunk, modelPrefillLength);
    await generate(promptIds(warmup, config.vocabSize), 1 + modelWarmupSteps);
    // One prefill right after the warm-up read 409.6 ms where the same prefill alone read 216.8 ms
    // (H100, session 25): prefills until they settle.
    const prompt = promptIds(modelPrefillLength, config.vocabSize);
    const prefill = await untilSettled(
      async () => {
        model.reset();
        const start = performance.now();
        await model.prefill(prompt);
        return { wallMs: performance.now() - start, ...model.timings.prefill };
      },
      (run) => run.ms,
    );
    densePrefillMs = prefill.ms;
    report({
      kernel: 'model prefill',
      shape,
      length: modelPrefillLength,
      ms: prefill.ms,
      tokensPerSecond: modelPrefillLength / (prefill.ms / 1e3),
      wallTokensPerSecond: modelPrefillLength / (prefill.wallMs / 1e3),
      config: { prefillChunk: model.prefillChunk, submits: prefill.submits },
    });
    for (const context of modelDecodeContexts) {
      const ids = promptIds(context - modelDecodeSteps - 1, config.vocabSize);
      const { arrivals, result } = await generate(ids, 1 + modelDecodeSteps);
      const { decode } = result.timings;
      if (decode.tokens !== modelDecodeSteps || model.position !== context - 1) {
        throw new Error(
          `model bench: ${decode.tokens} decode steps ran to ${model.position} cached tokens, not ${modelDecodeSteps} to ${context - 1}`,
        );
      }
      const wallMs = (arrivals[modelDecodeSteps] - arrivals[0]) / modelDecodeSteps;
      const gpuMs = decode.ms / decode.tokens;
      // The sparse decode rows run at the longest context.
      if (context === Math.max(...modelDecodeContexts)) denseDecodeMs = gpuMs;
      report({
        kernel: 'model decode (greedy)',
        shape,
        length: context,
        ms: gpuMs,
        tokensPerSecond: 1e3 / gpuMs,
        wallTokensPerSecond: 1e3 / wallMs,
        config: { steps: modelDecodeSteps, wallMsPerToken: wallMs },
      });
    }
  } finally {
    model.dispose();
  }
  await benchModelMethods(ctx, cpu, report, densePrefillMs, denseDecodeMs);
}

/** Target sparsity of the model prefill rows of the sparse prefill methods. */
const modelMethodSparsity = 0.9;

/**
 * The model prefill with each sparse prefill method of the registry at s = 0.9 in every layer,
 * through the forward pass as the app runs it (a GPU planner plans, packs the kernel's mask and
 * attends in the step's one submit, its plan in a timed pass of its own; a CPU planner builds the
 * mask first): GPU and wall time, the GPU and CPU planning time, the sparsity the kernels counted,
 * and the GPU time against dense's prefill.
 */
async function benchModelMethods(
  ctx: GpuContext,
  cpu: CpuModel,
  report: (row: BenchRow) => void,
  densePrefillMs: number,
  denseDecodeMs: number,
) {
  const { config } = cpu;
  const prompt = promptIds(modelPrefillLength, config.vocabSize);
  const shape = { ...config, numQueries: modelPrefillLength, qStart: 0 };
  const only = methodNames(option('methods'));
  for (const method of methodsFor('prefill')) {
    if (method.name === 'dense' || (only && !only.has(method.name))) continue;
    const params = method.paramsForSparsity(modelMethodSparsity, shape);
    const model = createModel(ctx, cpu, {
      maxSeqLen: modelPrefillLength,
      attention: { prefill: { name: method.name, params } },
    });
    try {
      await model.prefill(prompt.slice(0, model.prefillChunk));
      const run = await untilSettled(
        async () => {
          model.reset();
          const start = performance.now();
          await model.prefill(prompt);
          const layers = model.stats.prefill;
          const sum = (pick: (layer: (typeof layers)[number]) => number) =>
            layers.reduce((total, layer) => total + pick(layer), 0);
          return {
            wallMs: performance.now() - start,
            ...model.timings.prefill,
            measuredSparsity: 1 - sum((layer) => layer.touched) / sum((layer) => layer.total),
            plannerCpuMs: sum((layer) => layer.plannerMs),
            plannerGpuMs: sum((layer) => layer.plannerGpuMs),
          };
        },
        (run) => run.ms,
      );
      report({
        kernel: `model prefill, ${method.name}`,
        shape: modelShapeName,
        length: modelPrefillLength,
        ms: run.ms,
        targetSparsity: modelMethodSparsity,
        measuredSparsity: run.measuredSparsity,
        plannerMs: run.plannerGpuMs,
        plannerCpuMs: run.plannerCpuMs,
        speedup: densePrefillMs / run.ms,
        tokensPerSecond: modelPrefillLength / (run.ms / 1e3),
        wallTokensPerSecond: modelPrefillLength / (run.wallMs / 1e3),
        config: { params, submits: run.submits, wallMs: run.wallMs },
      });
    } catch (error) {
      console.error(`  model prefill, ${method.name}: failed:`, error);
      process.exitCode = 1;
    } finally {
      model.dispose();
    }
  }
  await benchModelDecodeMethods(ctx, cpu, report, denseDecodeMs);
}

/**
 * Greedy decode with each sparse decode method of the registry at s = 0.9 in every layer, at the
 * longest decode context, as the app runs it (the prompt prefilled densely, then
 * modelDecodeSteps tokens): GPU and wall time per token, counted sparsity, planner time, and
 * the GPU time against dense greedy decode's at that context (`denseDecodeMs`).
 */
async function benchModelDecodeMethods(
  ctx: GpuContext,
  cpu: CpuModel,
  report: (row: BenchRow) => void,
  denseDecodeMs: number,
) {
  const { config } = cpu;
  const context = Math.max(...modelDecodeContexts);
  const prompt = promptIds(context - modelDecodeSteps - 1, config.vocabSize);
  const shape = { ...config, numQueries: 1, qStart: context - 1 };
  const only = methodNames(option('methods'));
  for (const method of methodsFor('decode')) {
    if (method.name === 'dense' || (only && !only.has(method.name))) continue;
    const params = method.paramsForSparsity(modelMethodSparsity, shape);
    const model = createModel(ctx, cpu, {
      maxSeqLen: context,
      attention: { decode: { name: method.name, params } },
    });
    try {
      const options = { stopTokens: [] };
      // Warm-up at the timed context: some pipelines depend on it (Quest's list length, its
      // selection kernel), and compiling them took 150-190 ms of the first timed token (H100).
      await model.generate(prompt, { ...options, maxNewTokens: 1 + modelWarmupSteps });
      model.reset();
      const arrivals: number[] = [];
      const { timings } = await model.generate(prompt, {
        ...options,
        maxNewTokens: 1 + modelDecodeSteps,
        onToken: () => void arrivals.push(performance.now()),
      });
      const layers = model.stats.decode;
      const sum = (pick: (layer: (typeof layers)[number]) => number) =>
        layers.reduce((total, layer) => total + pick(layer), 0);
      const gpuMs = timings.decode.ms / timings.decode.tokens;
      const wallMs = (arrivals[modelDecodeSteps] - arrivals[0]) / modelDecodeSteps;
      report({
        kernel: `model decode, ${method.name}`,
        shape: modelShapeName,
        length: context,
        ms: gpuMs,
        targetSparsity: modelMethodSparsity,
        measuredSparsity: 1 - sum((layer) => layer.touched) / sum((layer) => layer.total),
        plannerCpuMs: sum((layer) => layer.plannerMs) / timings.decode.tokens,
        speedup: denseDecodeMs / gpuMs,
        tokensPerSecond: 1e3 / gpuMs,
        wallTokensPerSecond: 1e3 / wallMs,
        config: { params, steps: modelDecodeSteps, wallMsPerToken: wallMs },
      });
    } catch (error) {
      console.error(`  model decode, ${method.name}: failed:`, error);
      process.exitCode = 1;
    } finally {
      model.dispose();
    }
  }
}

/** Tiling variants at the issue's target shapes (prefill L 4K, decode 32K and 64K, 32/8 heads). */
async function tune(ctx: GpuContext, report: (row: BenchRow) => void, copy: number | undefined) {
  const { name, shape } = shapes[0];
  const variants: Partial<PrefillTileConfig>[] = [
    { lanesPerRow: 2, rowsPerThread: 1 },
    { lanesPerRow: 2, rowsPerThread: 1, threads: 512 },
    { lanesPerRow: 2, rowsPerThread: 1, keyChunk: 8 },
    { lanesPerRow: 2, rowsPerThread: 1, keyChunk: 32 },
    { lanesPerRow: 2, rowsPerThread: 1, keyTile: 32 },
    { lanesPerRow: 2, rowsPerThread: 2, keyChunk: 16 },
    { lanesPerRow: 1, rowsPerThread: 1, keyChunk: 16 },
    { lanesPerRow: 1, rowsPerThread: 1, keyChunk: 8, threads: 128 },
  ];
  for (const { name: prefillName, shape: prefillShape } of shapes) {
    const prefillBase = prefillTileConfig(ctx, prefillShape.headDim);
    for (const variant of [{}, ...variants]) {
      const config = { ...prefillBase, ...variant };
      config.queryTile = (config.threads / config.lanesPerRow) * config.rowsPerThread;
      config.workgroupBytes = config.keyTile * 2 * prefillShape.headDim * 4;
      report(await benchPrefill(ctx, prefillName, prefillShape, quick ? 512 : 4096, config));
    }
  }
  // Block-sparse prefill at s = 0.9 (the 6x target): the default's 128-query tiles (two mask rows,
  // the union of their lists) against one 64-query mask row per workgroup ({ threads: 128 }: 4.78
  // against 3.86 ms on the H200) and other tilings.
  const sparseLength = quick ? 1024 : 8192;
  const inputs = attentionInputs(ctx, shape, sparseLength, 'prefill', 'f32');
  const counts = createEmptyBuffer(ctx.device, shape.numHeads * (sparseLength / sparseBlock) * 4);
  const mask = evenBlockMask(shape.numHeads, sparseLength, 0.9);
  const sparseBase = blockSparseTileConfig(ctx, shape.headDim, sparseBlock, sparseBlock);
  const sparseVariants: Partial<BlockSparseTileConfig>[] = [
    {},
    { threads: 128 },
    { lanesPerRow: 1, threads: 128 },
    { lanesPerRow: 2, rowsPerThread: 2, threads: 128 },
    { lanesPerRow: 4, threads: 256 },
    { keyChunk: 16 },
    { keyTile: 16, segment: 16, workgroupBytes: 16 * 2 * shape.headDim * 4 },
  ];
  for (const variant of sparseVariants) {
    const config = { ...sparseBase, ...variant };
    if (!config.subgroups && config.lanesPerRow > 1) continue;
    config.queryTile = (config.threads / config.lanesPerRow) * config.rowsPerThread;
    const sparse = recordBlockSparsePrefill(ctx, inputs.prefill, mask, { ...inputs.buffers, counts }, config); // prettier-ignore
    report({
      kernel: 'block-sparse prefill s 0.9 (tune)',
      shape: name,
      length: sparseLength,
      kvDtype: 'f32',
      ms: await timeAdaptive(ctx, sparse.record),
      config,
    });
    sparse.dispose();
  }
  counts.destroy();
  inputs.destroy();
  for (const [dtype, length] of [['f16', 32768]] as const) {
    for (const targetWorkgroups of [512]) {
      for (const lanes of [16]) {
        for (const unroll of [8, 16]) {
          const tuning = { targetWorkgroups, lanes, unroll };
          report(await benchDecode(ctx, name, shape, quick ? 2048 : length, dtype, copy, tuning));
        }
      }
    }
  }
  // BLASST decode: blocks per split (more splits, more anchor blocks scored twice).
  const decodeLength = lengthsOption?.[0] ?? (quick ? 2048 : 32768);
  for (const blocksPerSplit of [8, 4, 16, 32]) {
    const blasst = await benchBlasst(ctx, shape, decodeLength, 'decode', { blocksPerSplit });
    console.error(`  dense decode (structured) L=${decodeLength}: ${blasst.denseMs.toFixed(4)} ms`);
    blasst.rows.forEach(report);
  }
}

async function main() {
  const ctx = await acquireNodeGpuContext();
  const adapter = `${ctx.adapter.vendor} ${ctx.adapter.architecture} ${ctx.adapter.description}`;
  console.log(`adapter: ${adapter}`);
  console.log(`timing: ${ctx.caps.timestampQuery ? 'timestamp-query' : 'wall-clock'}`);
  const rows: BenchRow[] = [];
  const report = (row: BenchRow) => {
    rows.push(row);
    const sparse =
      row.measuredSparsity === undefined
        ? ''
        : ` (measured s ${row.measuredSparsity.toFixed(3)}${row.speedup === undefined ? '' : `, ${row.speedup.toFixed(2)}x dense`})`;
    const tokens =
      row.tokensPerSecond === undefined ? '' : ` (${row.tokensPerSecond.toFixed(1)} tokens/s)`;
    console.error(
      `  ${row.kernel} ${row.shape} L=${row.length} ${row.kvDtype ?? ''}: ${row.ms.toFixed(4)} ms${sparse}${tokens}`,
    );
  };
  let copyGbPerSecond: number | undefined;
  if (flag('tune')) {
    copyGbPerSecond = (await benchCopy(ctx)).gbPerSecond;
    report(await benchFmaPeak(ctx));
    await tune(ctx, report, copyGbPerSecond);
  } else if (only.has('copy')) {
    const row = await benchCopy(ctx);
    copyGbPerSecond = row.gbPerSecond;
    report(row);
    report(await benchFmaPeak(ctx));
    for (const floor of await benchDispatchFloor(ctx)) report(floor);
  }
  for (const { name, shape } of flag('tune') ? [] : shapes) {
    if (only.has('prefill')) {
      for (const length of prefillLengths) report(await benchPrefill(ctx, name, shape, length));
    }
    if (only.has('decode')) {
      for (const dtype of ['f32', 'f16'] as const) {
        for (const length of decodeLengths) {
          report(await benchDecode(ctx, name, shape, length, dtype, copyGbPerSecond));
        }
      }
    }
  }
  // A failing section still leaves the other sections' rows in the table and the JSON.
  const sections: [string, typeof benchQuestSection][] = [
    ['methods', benchMethodsSection],
    ['sparse', benchSparse],
    ['quest', benchQuestSection],
    ['blasst', benchBlasstSection],
    ['model', benchModel],
  ];
  for (const [name, run] of sections) {
    if (!only.has(name) || flag('tune')) continue;
    try {
      await run(ctx, report, copyGbPerSecond);
    } catch (error) {
      console.error(`section ${name} failed:`, error);
      process.exitCode = 1;
    }
  }
  printTable(rows);
  const jsonPath = option('json');
  const result = {
    adapter: ctx.adapter,
    caps: ctx.caps,
    copyGbPerSecond,
    rows,
    date: new Date().toISOString(),
  };
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify(result, null, 2));
  ctx.device.destroy();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
