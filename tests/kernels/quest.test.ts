import { beforeAll, describe, expect, it } from 'vitest';
import { createStorageBuffer, readBuffer } from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { float16BitsToFloat32, roundToFloat16 } from '../../src/gpu/f16';
import { denseDecodeOnHost } from '../../src/kernels/denseDecode';
import { defaultScale, type KvDtype, type PagedKvLayout } from '../../src/kernels/layout';
import { packPagedPool, pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import { createQuestSummaries, questDecodeOnHost, type QuestTuning } from '../../src/kernels/quest';
import { pageSummaries, quest } from '../../src/methods/reference/quest';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

interface Case {
  name: string;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  kvLen: number;
  tokenBudget: number;
  dtype: KvDtype;
  seed: number;
  shuffled?: boolean;
  /** Every token has the same key: all bounds tie, so the lowest pages win. */
  equalKeys?: boolean;
  /** Page p holds the keys of page p % repeatPages: bounds tie in classes the budget splits. */
  repeatPages?: number;
}

const pageSize = 16;

const cases: Case[] = [
  { name: 'GQA 1, seed 1', numHeads: 2, numKvHeads: 2, headDim: 32, kvLen: 333, tokenBudget: 64, dtype: 'f32', seed: 1, shuffled: true }, // prettier-ignore
  { name: 'GQA 1, seed 2', numHeads: 2, numKvHeads: 2, headDim: 64, kvLen: 250, tokenBudget: 96, dtype: 'f32', seed: 2 }, // prettier-ignore
  { name: 'GQA 4, seed 3', numHeads: 8, numKvHeads: 2, headDim: 32, kvLen: 301, tokenBudget: 80, dtype: 'f32', seed: 3, shuffled: true }, // prettier-ignore
  { name: 'GQA 4, seed 4', numHeads: 4, numKvHeads: 1, headDim: 64, kvLen: 200, tokenBudget: 48, dtype: 'f32', seed: 4 }, // prettier-ignore
  { name: 'GQA 4 f16, seed 5', numHeads: 8, numKvHeads: 2, headDim: 64, kvLen: 279, tokenBudget: 64, dtype: 'f16', seed: 5, shuffled: true }, // prettier-ignore
  { name: 'GQA 1 f16, seed 6', numHeads: 1, numKvHeads: 1, headDim: 32, kvLen: 170, tokenBudget: 32, dtype: 'f16', seed: 6 }, // prettier-ignore
  { name: 'one partial page only', numHeads: 4, numKvHeads: 2, headDim: 32, kvLen: 9, tokenBudget: 32, dtype: 'f32', seed: 7 }, // prettier-ignore
  { name: 'budget 0: current page only', numHeads: 2, numKvHeads: 1, headDim: 32, kvLen: 100, tokenBudget: 0, dtype: 'f32', seed: 8 }, // prettier-ignore
  { name: 'ties go to the lower page', numHeads: 4, numKvHeads: 1, headDim: 32, kvLen: 150, tokenBudget: 48, dtype: 'f32', seed: 9, equalKeys: true }, // prettier-ignore
  { name: 'many pages, headDim 128', numHeads: 8, numKvHeads: 2, headDim: 128, kvLen: 4100, tokenBudget: 1024, dtype: 'f32', seed: 10, shuffled: true }, // prettier-ignore
  { name: 'budget splits tied page classes', numHeads: 4, numKvHeads: 2, headDim: 32, kvLen: 4805, tokenBudget: 112, dtype: 'f32', seed: 11, repeatPages: 3 }, // prettier-ignore
  { name: 'budget one page short of the cache', numHeads: 2, numKvHeads: 2, headDim: 64, kvLen: 4000, tokenBudget: 3968, dtype: 'f16', seed: 12 }, // prettier-ignore
];

function inputs(c: Case) {
  const { numHeads, numKvHeads, headDim, kvLen } = c;
  const q = randomFloats(numHeads * headDim, c.seed, 2);
  const k = randomFloats(kvLen * numKvHeads * headDim, c.seed + 1000);
  if (c.equalKeys) {
    const row = k.slice(0, numKvHeads * headDim);
    for (let t = 1; t < kvLen; t++) k.set(row, t * row.length);
  }
  if (c.repeatPages) {
    const row = numKvHeads * headDim;
    const period = c.repeatPages * pageSize;
    for (let t = period; t < kvLen; t++) {
      k.copyWithin(t * row, (t % period) * row, ((t % period) + 1) * row);
    }
  }
  const v = randomFloats(kvLen * numKvHeads * headDim, c.seed + 2000);
  return { q, k, v };
}

const layoutOf = (c: Case): PagedKvLayout => ({
  pageSize,
  numKvHeads: c.numKvHeads,
  headDim: c.headDim,
  dtype: c.dtype,
});

async function runCase(c: Case, tokenBudget = c.tokenBudget, tuning?: QuestTuning) {
  const { q, k, v } = inputs(c);
  const pages = pagesFor(c.kvLen, pageSize);
  const params = {
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    kvLen: c.kvLen,
    scale: defaultScale(c.headDim),
    kv: layoutOf(c),
  };
  const pageTable = c.shuffled ? shuffledPageTable(pages, c.seed) : undefined;
  const gpu = await questDecodeOnHost(ctx, { ...params, q, k, v, pageTable, tokenBudget, tuning });
  // f16 KV: the reference sees the keys and values the pool holds.
  const kRef = c.dtype === 'f16' ? roundToFloat16(k) : k;
  const vRef = c.dtype === 'f16' ? roundToFloat16(v) : v;
  const ref = quest(
    { ...params, q, k: kRef, v: vRef, numQueries: 1, qStart: c.kvLen - 1 },
    { pageSize, tokenBudget },
  );
  return { gpu, ref, params, q, k, v, pageTable };
}

describe('Quest decode', () => {
  it.each(cases)('$name: pages and output match the reference', async (c) => {
    const { gpu, ref } = await runCase(c);
    expect(gpu.selectedPages).toEqual(ref.pages);
    expect(gpu.pagesRead).toBe(ref.pagesRead);
    expect(gpu.out.every(Number.isFinite)).toBe(true);
    const { error, magnitude } = maxAbsError(gpu.out, ref.out);
    expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
  });

  /** The selection with `tuning` picks the reference's pages: many pages, tied classes, all tied. */
  async function expectSelectionPicksReferencePages(tuning: QuestTuning) {
    for (const name of [
      'many pages, headDim 128',
      'budget splits tied page classes',
      'ties go to the lower page',
    ]) {
      const c = cases.find((x) => x.name === name)!;
      const { gpu, ref } = await runCase(c, c.tokenBudget, tuning);
      expect(gpu.selectedPages).toEqual(ref.pages);
    }
  }

  // Fewer invocations than pages (several keys each in the radix levels and the compaction) and
  // than bins; both digit widths.
  const selections = [32, 64, 128].flatMap((selectWorkgroupSize) =>
    ([4, 8] as const).map((selectDigitBits) => ({
      selection: 'radix' as const,
      selectWorkgroupSize,
      selectDigitBits,
    })),
  );
  it.each(selections)(
    'a $selectWorkgroupSize-invocation selection, $selectDigitBits bits a level, picks the reference pages',
    (tuning) => expectSelectionPicksReferencePages(tuning),
  );

  // The cases above have at most 1,024 complete pages a head, so their selection counts ranks (it
  // lists pages by rank; the host sorts them); longer caches take the radix select: every case.
  it.each(cases)('radix selection, $name: pages and output match', async (c) => {
    const { gpu, ref } = await runCase(c, c.tokenBudget, { selection: 'radix' });
    expect(gpu.selectedPages).toEqual(ref.pages);
    expect(gpu.pagesRead).toBe(ref.pagesRead);
    const { error, magnitude } = maxAbsError(gpu.out, ref.out);
    expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
  });

  // RUN pages an invocation: the tie rule within an invocation's pages, and a last workgroup whose
  // pages run past the head's.
  it.each([1, 2, 4, 8] as const)(
    'rank-counting selection, %i pages an invocation: a budget of every page, ties, and keys beyond one staged round',
    async (rankRun) => {
      await expectSelectionPicksReferencePages({ selection: 'rank', rankRun });
      const every = cases.find((x) => x.name === 'many pages, headDim 128')!;
      const all = await runCase(every, pagesFor(every.kvLen, pageSize) * pageSize, {
        selection: 'rank',
        rankRun,
      });
      expect(all.gpu.selectedPages).toEqual(all.ref.pages);
      // A round stages 2,048 keys: 40,000 tokens (2,499 complete pages) take two.
      const long = { ...every, numHeads: 2, numKvHeads: 1, kvLen: 40_000, tokenBudget: 4096 };
      const { gpu, ref } = await runCase(long, long.tokenBudget, { selection: 'rank', rankRun });
      expect(gpu.selectedPages).toEqual(ref.pages);
    },
  );

  // More pages than the key cache holds: every pass reads the bounds from global memory, and a
  // budget of every page takes the compaction-only path that skips the first pass.
  const uncached = [
    { selection: 'radix' as const, selectWorkgroupSize: 32, selectDigitBits: 4 as const, selectCacheKeys: 32 }, // prettier-ignore
    { selection: 'radix' as const, selectWorkgroupSize: 128, selectDigitBits: 8 as const, selectCacheKeys: 32 }, // prettier-ignore
  ];
  it.each(uncached)(
    'uncached keys ($selectWorkgroupSize invocations, $selectDigitBits bits): pages and output match',
    async (tuning) => {
      for (const name of ['many pages, headDim 128', 'budget splits tied page classes']) {
        const c = cases.find((x) => x.name === name)!;
        const { gpu, ref } = await runCase(c, c.tokenBudget, tuning);
        expect(gpu.selectedPages).toEqual(ref.pages);
        const { error, magnitude } = maxAbsError(gpu.out, ref.out);
        expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
      }
      const every = cases.find((x) => x.name === 'many pages, headDim 128')!;
      const { gpu, ref } = await runCase(every, pagesFor(every.kvLen, pageSize) * pageSize, tuning);
      expect(gpu.selectedPages).toEqual(ref.pages);
      expect(gpu.pagesRead).toBe(ref.pagesRead);
    },
  );

  it('ties select the lowest pages', async () => {
    const c = cases.find((x) => x.equalKeys)!;
    const { gpu } = await runCase(c);
    const last = pagesFor(c.kvLen, pageSize) - 1;
    expect(gpu.selectedPages).toEqual([[0, 1, 2, last]]);
  });

  it('a budget covering the cache reads every page and equals dense decode', async () => {
    const c = cases[2];
    const { gpu, params, q, k, v, pageTable } = await runCase(c, 512);
    const pages = pagesFor(c.kvLen, pageSize);
    const all = Array.from({ length: pages }, (_, i) => i);
    expect(gpu.selectedPages).toEqual([all, all]);
    expect(gpu.pagesRead).toBe(2 * pages);
    const dense = await denseDecodeOnHost(ctx, { ...params, q, k, v, pageTable });
    const { error, magnitude } = maxAbsError(gpu.out, dense);
    expect(error).toBeLessThanOrEqual(1e-6 * magnitude);
  });

  it.each(['f32', 'f16'] as const)(
    'incremental summary update equals full recompute (%s)',
    async (dtype) => {
      const { device } = ctx;
      const c = { ...cases[2], dtype };
      const kv = layoutOf(c);
      const { k } = inputs(c);
      const capacity = pagesFor(c.kvLen, pageSize);
      const table = shuffledPageTable(capacity, 3);
      const words = (len: number) => packPagedPool(k, len, kv, table).data;
      const kPool = createStorageBuffer(device, words(c.kvLen), 'k pool');
      const pageTable = createStorageBuffer(device, table, 'page table');
      const size = capacity * c.numKvHeads * 2 * c.headDim;
      // f16 caches get f16 summaries (pairs in u32 words, the lower half first).
      const readSummaries = async (buffer: GPUBuffer) => {
        const bytes = await readBuffer(device, buffer, size * (dtype === 'f16' ? 2 : 4));
        if (dtype === 'f32') return new Float32Array(bytes);
        return Float32Array.from(new Uint16Array(bytes), float16BitsToFloat32);
      };
      const run = async (steps: [number, number, number, Float32Array | Uint32Array][]) => {
        const summaries = createQuestSummaries(ctx, kv, capacity, { kPool, pageTable });
        for (const [first, last, len, data] of steps) {
          device.queue.writeBuffer(kPool, 0, data.buffer, data.byteOffset, data.byteLength);
          const encoder = device.createCommandEncoder();
          const pass = encoder.beginComputePass();
          summaries.recordUpdate(first, last, len)(pass);
          pass.end();
          device.queue.submit([encoder.finish()]);
        }
        const out = await readSummaries(summaries.buffer);
        summaries.dispose();
        return out;
      };
      // Prefill 100 tokens, then appends: each step recomputes only the pages it touched.
      const steps: [number, number, number, Float32Array | Uint32Array][] = [
        [0, 7, 100, words(100)],
        [6, 8, 117, words(117)],
        [7, 10, 160, words(160)],
        [9, capacity, c.kvLen, words(c.kvLen)],
      ];
      const incremental = await run(steps);
      const full = await run([[0, capacity, c.kvLen, words(c.kvLen)]]);
      expect(incremental).toEqual(full);
      // And both equal the CPU summaries (on the values the pool holds).
      const keys = dtype === 'f16' ? roundToFloat16(k) : k;
      const cpu = pageSummaries(keys, c.kvLen, c.numKvHeads, c.headDim, pageSize);
      for (let p = 0; p < capacity; p++) {
        for (let g = 0; g < c.numKvHeads; g++) {
          const at = (p * c.numKvHeads + g) * 2 * c.headDim;
          const slice = (i: number) => Array.from(full.subarray(at + i, at + i + c.headDim));
          const cpuSlice = (a: Float64Array[]) =>
            Array.from(a[g].subarray(p * c.headDim, (p + 1) * c.headDim));
          expect(slice(0)).toEqual(cpuSlice(cpu.min));
          expect(slice(c.headDim)).toEqual(cpuSlice(cpu.max));
        }
      }
      kPool.destroy();
      pageTable.destroy();
    },
  );
});
