/**
 * `npm run bench`: times our kernels on whatever WebGPU adapter Node finds (Dawn), with timestamp
 * queries after a warm-up, and reports each as a ratio to a ceiling measured in the same run:
 * decode KV bandwidth against the vec4 copy kernel's bandwidth, prefill TFLOP/s (2 L^2 h d for
 * causal attention) against the adapter's nominal fp32 peak when known.
 *
 *   npm run bench -- [--quick] [--json results.json] [--only copy,prefill,decode,sparse] [--tune]
 *
 * The sparse rows time each method with a GPU kernel at sparsity 0.5, 0.8, 0.9, 0.95 next to dense
 * at the same size, planner apart from kernel, with the sparsity the kernels counted.
 *
 * --tune times variants of each kernel's tiling at one size instead, to choose the defaults.
 */
import { writeFileSync } from 'node:fs';
import { createEmptyBuffer, createStorageBuffer } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import { acquireNodeGpuContext } from '../gpu/node';
import { timeDispatches, type RecordDispatches } from '../gpu/timer';
import { readBuffer } from '../gpu/buffers';
import { recordBlockSparsePrefill } from '../kernels/blockSparsePrefill';
import { recordCopy, recordFmaPeak } from '../kernels/copy';
import { planBlockSparseOnGpu } from '../kernels/planners';
import { createQuestSummaries, recordQuestDecode } from '../kernels/quest';
import { blockMaskFromLists } from '../methods/reference/masks';
import { decodeSplitPlan, recordDenseDecode, type DecodeTuning } from '../kernels/denseDecode';
import {
  prefillTileConfig,
  recordDensePrefill,
  type PrefillTileConfig,
} from '../kernels/densePrefill';
import {
  defaultScale,
  type AttentionShape,
  type KvDtype,
  type PagedKvLayout,
} from '../kernels/layout';

interface BenchRow {
  kernel: string;
  /** Sparse rows: the sparsity asked for, the sparsity the kernel counted, and the dense time. */
  targetSparsity?: number;
  measuredSparsity?: number;
  plannerMs?: number;
  speedup?: number;
  shape: string;
  length: number;
  kvDtype?: KvDtype;
  ms: number;
  tflops?: number;
  gbPerSecond?: number;
  shareOfCopy?: number;
  config?: unknown;
}

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
};
const quick = flag('quick');
const only = new Set((option('only') ?? 'copy,prefill,decode,sparse').split(','));

const shapes: { name: string; shape: AttentionShape }[] = [
  { name: '32h/8kv d128', shape: { numHeads: 32, numKvHeads: 8, headDim: 128 } },
  { name: '12h/12kv d64', shape: { numHeads: 12, numKvHeads: 12, headDim: 64 } },
];
const prefillLengths = quick ? [256, 1024] : [1024, 4096, 8192, 16384];
const decodeLengths = quick ? [1024, 4096] : [4096, 16384, 32768, 65536];
const pageSize = 16;

/** Deterministic, cheap filler: benchmark timings do not depend on the values. */
function filledFloats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2147483648 - 1;
  }
  return out;
}

/** u32 words holding two f16 values in [-2, 2]: the packed KV layout, without a conversion pass. */
function filledHalfPairs(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let state = seed >>> 0;
  const half = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return ((state >>> 16) & 0x83ff) | ((12 + ((state >>> 8) & 3)) << 10);
  };
  for (let i = 0; i < n; i++) out[i] = (half() | (half() << 16)) >>> 0;
  return out;
}

function poolBuffer(ctx: GpuContext, layout: PagedKvLayout, numPages: number, seed: number) {
  const perToken = layout.dtype === 'f16' ? layout.headDim / 2 : layout.headDim;
  const words = numPages * layout.numKvHeads * layout.pageSize * perToken;
  const data = layout.dtype === 'f16' ? filledHalfPairs(words, seed) : filledFloats(words, seed);
  return createStorageBuffer(ctx.device, data);
}

const identityPageTable = (pages: number) => Uint32Array.from({ length: pages }, (_, i) => i);

/**
 * Median of three timed windows of about 300 ms each, after about 200 ms of the same work: short
 * kernels measured right after the GPU idled (while the CPU filled the next inputs) ran up to 4x
 * slower on the H100 than after a longer warm-up, as its clocks had not come back up.
 */
async function timeAdaptive(ctx: GpuContext, record: RecordDispatches): Promise<number> {
  const probe = await timeDispatches(ctx, record, { warmup: 1, repeats: 1 });
  const perRepeat = Math.max(probe.ms, 1e-3);
  const count = (ms: number) => Math.max(3, Math.min(2000, Math.ceil(ms / perRepeat)));
  const times: number[] = [];
  for (let window = 0; window < 3; window++) {
    const warmup = window === 0 ? count(200) : 1;
    times.push((await timeDispatches(ctx, record, { warmup, repeats: count(300) })).ms);
  }
  return times.sort((a, b) => a - b)[1];
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

/**
 * Filled inputs for attention over `length` keys in the paged layout (identity page table): the
 * prefill variant holds a query per key, the decode variant one query per head.
 */
function attentionInputs(
  ctx: GpuContext,
  shape: AttentionShape,
  length: number,
  phase: 'prefill' | 'decode',
  dtype: KvDtype,
) {
  const kv: PagedKvLayout = {
    pageSize,
    numKvHeads: shape.numKvHeads,
    headDim: shape.headDim,
    dtype,
  };
  const pages = Math.ceil(length / pageSize);
  const queries = phase === 'prefill' ? length : 1;
  const rowFloats = queries * shape.numHeads * shape.headDim;
  const buffers = {
    q: createStorageBuffer(ctx.device, filledFloats(rowFloats, 1)),
    kPool: poolBuffer(ctx, kv, pages, 2),
    vPool: poolBuffer(ctx, kv, pages, 3),
    pageTable: createStorageBuffer(ctx.device, identityPageTable(pages)),
    out: createEmptyBuffer(ctx.device, rowFloats * 4),
  };
  const scale = defaultScale(shape.headDim);
  return {
    kv,
    pages,
    buffers,
    prefill: { ...shape, numQueries: length, qStart: 0, scale, kv },
    decode: { ...shape, kvLen: length, scale, kv },
    destroy: () => Object.values(buffers).forEach((buffer) => buffer.destroy()),
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
    r.speedup === undefined ? '' : `${r.speedup.toFixed(2)}x`,
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
    'vs dense',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  for (const line of [header, ...lines]) {
    console.log(line.map((cell, i) => cell.padEnd(widths[i])).join('  '));
  }
}

const sparsities = [0.5, 0.8, 0.9, 0.95];
const sparseBlock = 64;

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
    const geometry = { numHeads: shape.numHeads, numQueries: length, qStart: 0 };
    const mask = blockMaskFromLists(
      { ...geometry, blockQ: sparseBlock, blockK: sparseBlock },
      (_h, qb) => {
        const keep = Math.max(Math.min(2, qb + 1), Math.round((1 - s) * (qb + 1)));
        const picked = new Set([qb, 0]);
        for (let i = 0; picked.size < keep; i++) picked.add(Math.floor((i * (qb + 1)) / keep));
        return [...picked];
      },
    );
    const sparse = recordBlockSparsePrefill(ctx, params, mask, { ...buffers, counts });
    const ms = await timeAdaptive(ctx, sparse.record);
    const touched = new Uint32Array(await readBuffer(ctx.device, counts)).reduce((a, b) => a + b);
    const causal = (shape.numHeads * numBlocks * (numBlocks + 1)) / 2;
    const topChunks = Math.max(1, Math.round((1 - s) * numBlocks));
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
 * all in the timed record (planner included), against dense decode over the same f16 cache.
 */
async function benchQuest(ctx: GpuContext, shape: AttentionShape, length: number) {
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
  const budgets = [
    ...sparsities.map((s) =>
      Math.max(pageSize, Math.round(((1 - s) * length) / pageSize) * pageSize),
    ),
    2048,
  ];
  const rows: BenchRow[] = [];
  for (const tokenBudget of budgets) {
    const quest = recordQuestDecode(
      ctx,
      { ...params, tokenBudget },
      {
        ...buffers,
        summaries: summaries.buffer,
      },
    );
    const ms = await timeAdaptive(ctx, quest.record);
    const counted = new Uint32Array(await readBuffer(ctx.device, quest.pageCounts));
    const pagesRead = counted.slice(0, shape.numKvHeads).reduce((a, b) => a + b);
    quest.dispose();
    rows.push({
      kernel: `quest decode (budget ${tokenBudget})`,
      shape: '32h/8kv d128',
      length,
      kvDtype: 'f16',
      ms,
      targetSparsity: 1 - tokenBudget / length,
      measuredSparsity: 1 - pagesRead / (shape.numKvHeads * pages),
      speedup: denseMs / ms,
    });
  }
  summaries.dispose();
  inputs.destroy();
  return { denseMs, rows };
}

async function benchSparse(ctx: GpuContext, report: (row: BenchRow) => void) {
  const { shape } = shapes[0];
  for (const length of quick ? [1024] : [8192, 16384]) {
    const { denseMs, rows } = await benchBlockSparse(ctx, shape, length);
    console.error(`  dense prefill L=${length}: ${denseMs.toFixed(3)} ms (sparse rows compare)`);
    rows.forEach(report);
  }
  for (const length of quick ? [2048] : [32768, 65536]) {
    const { denseMs, rows } = await benchQuest(ctx, shape, length);
    console.error(`  dense decode f16 L=${length}: ${denseMs.toFixed(4)} ms (sparse rows compare)`);
    rows.forEach(report);
  }
}

/** Tiling variants at the target shapes (prefill L 4K, decode 32K and 64K, 32/8 heads). */
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
}

async function main() {
  const ctx = await acquireNodeGpuContext();
  const adapter = `${ctx.adapter.vendor} ${ctx.adapter.architecture} ${ctx.adapter.description}`;
  console.log(`adapter: ${adapter}`);
  console.log(`timing: ${ctx.caps.timestampQuery ? 'timestamp-query' : 'wall-clock'}`);
  const rows: BenchRow[] = [];
  const report = (row: BenchRow) => {
    rows.push(row);
    console.error(
      `  ${row.kernel} ${row.shape} L=${row.length} ${row.kvDtype ?? ''}: ${row.ms.toFixed(4)} ms`,
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
  if (only.has('sparse') && !flag('tune')) await benchSparse(ctx, report);
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
