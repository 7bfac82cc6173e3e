import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { roundToFloat16 } from '../../src/gpu/f16';
import { attentionReference } from '../../src/kernels/attention.reference';
import {
  decodeKeyBlocks,
  decodeSplitPlan,
  denseDecodeOnHost,
  type DecodeKeyBlocks,
  type DecodeParams,
} from '../../src/kernels/denseDecode';
import { defaultScale, type KvDtype } from '../../src/kernels/layout';
import { pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import { blockMaskFromMaskMod } from '../../src/methods/reference/masks';
import { sparseAttention } from '../../src/methods/reference/sparseAttention';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

/** The same device with subgroups hidden, so the launcher picks the workgroup-memory fallback. */
const withoutSubgroups = (c: GpuContext): GpuContext => ({
  ...c,
  caps: { ...c.caps, subgroups: false },
});

interface Case {
  name: string;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  kvLen: number;
  pageSize: number;
  dtype: KvDtype;
  shuffled?: boolean;
  /** Multiplies the default 1/sqrt(headDim) softmax scale: large values give peaked softmaxes. */
  scaleFactor?: number;
  /** Every token has the same key, so all scores are equal. */
  equalKeys?: boolean;
  noSubgroups?: boolean;
  seed: number;
}

const cases: Case[] = [
  {
    name: 'kvLen 1',
    numHeads: 2,
    numKvHeads: 2,
    headDim: 32,
    kvLen: 1,
    pageSize: 16,
    dtype: 'f32',
    seed: 1,
  },
  {
    name: 'kvLen 1 f16',
    numHeads: 4,
    numKvHeads: 1,
    headDim: 64,
    kvLen: 1,
    pageSize: 16,
    dtype: 'f16',
    seed: 2,
  },
  {
    name: 'group 3, partial page',
    numHeads: 6,
    numKvHeads: 2,
    headDim: 64,
    kvLen: 37,
    pageSize: 16,
    dtype: 'f32',
    shuffled: true,
    seed: 3,
  },
  {
    name: 'group 4, many splits',
    numHeads: 8,
    numKvHeads: 2,
    headDim: 128,
    kvLen: 1000,
    pageSize: 16,
    dtype: 'f16',
    shuffled: true,
    seed: 4,
  },
  {
    name: 'group 7, d 96 f16, page 64',
    numHeads: 7,
    numKvHeads: 1,
    headDim: 96,
    kvLen: 300,
    pageSize: 64,
    dtype: 'f16',
    shuffled: true,
    seed: 5,
  },
  {
    name: 'group 8, page 64',
    numHeads: 8,
    numKvHeads: 1,
    headDim: 128,
    kvLen: 200,
    pageSize: 64,
    dtype: 'f16',
    shuffled: true,
    seed: 6,
  },
  {
    name: 'group 1, d 96 f32',
    numHeads: 3,
    numKvHeads: 3,
    headDim: 96,
    kvLen: 129,
    pageSize: 16,
    dtype: 'f32',
    seed: 7,
  },
  {
    name: 'more splits than reduce lanes',
    numHeads: 4,
    numKvHeads: 1,
    headDim: 32,
    kvLen: 2600,
    pageSize: 16,
    dtype: 'f32',
    shuffled: true,
    seed: 8,
  },
  {
    name: 'd 128 f32, split tail',
    numHeads: 4,
    numKvHeads: 2,
    headDim: 128,
    kvLen: 333,
    pageSize: 16,
    dtype: 'f32',
    seed: 9,
  },
  {
    name: 'd 32 f16, group 3',
    numHeads: 3,
    numKvHeads: 1,
    headDim: 32,
    kvLen: 71,
    pageSize: 64,
    dtype: 'f16',
    shuffled: true,
    seed: 10,
  },
  {
    name: 'scores > 100 f32',
    numHeads: 4,
    numKvHeads: 1,
    headDim: 64,
    kvLen: 500,
    pageSize: 16,
    dtype: 'f32',
    scaleFactor: 64,
    seed: 11,
  },
  {
    name: 'scores > 100 f16',
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    kvLen: 300,
    pageSize: 64,
    dtype: 'f16',
    scaleFactor: 64,
    shuffled: true,
    seed: 12,
  },
  {
    name: 'all-equal scores',
    numHeads: 4,
    numKvHeads: 1,
    headDim: 64,
    kvLen: 250,
    pageSize: 16,
    dtype: 'f32',
    equalKeys: true,
    scaleFactor: 20,
    seed: 13,
  },
  {
    name: 'fallback, group 4 f16',
    numHeads: 8,
    numKvHeads: 2,
    headDim: 128,
    kvLen: 700,
    pageSize: 16,
    dtype: 'f16',
    shuffled: true,
    noSubgroups: true,
    seed: 14,
  },
  {
    name: 'fallback, group 7 d 96 f32',
    numHeads: 7,
    numKvHeads: 1,
    headDim: 96,
    kvLen: 90,
    pageSize: 64,
    dtype: 'f32',
    noSubgroups: true,
    seed: 15,
  },
];

function inputs(c: Case) {
  const { numHeads, numKvHeads, headDim, kvLen } = c;
  const q = randomFloats(numHeads * headDim, c.seed, 2);
  const k = randomFloats(kvLen * numKvHeads * headDim, c.seed + 1000);
  if (c.equalKeys) {
    const row = k.slice(0, numKvHeads * headDim);
    for (let t = 1; t < kvLen; t++) k.set(row, t * row.length);
  }
  const v = randomFloats(kvLen * numKvHeads * headDim, c.seed + 2000);
  return { q, k, v };
}

function reference(c: Case, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) {
  return attentionReference({
    ...c,
    q,
    k,
    v,
    numQueries: 1,
    qStart: c.kvLen - 1,
    scale: defaultScale(c.headDim) * (c.scaleFactor ?? 1),
  });
}

describe('dense decode attention', () => {
  it.each(cases)('$name matches the float64 reference', async (c) => {
    const { q, k, v } = inputs(c);
    const kv = {
      pageSize: c.pageSize,
      numKvHeads: c.numKvHeads,
      headDim: c.headDim,
      dtype: c.dtype,
    };
    const pages = pagesFor(c.kvLen, c.pageSize);
    const out = await denseDecodeOnHost(c.noSubgroups ? withoutSubgroups(ctx) : ctx, {
      numHeads: c.numHeads,
      numKvHeads: c.numKvHeads,
      headDim: c.headDim,
      kvLen: c.kvLen,
      scale: defaultScale(c.headDim) * (c.scaleFactor ?? 1),
      kv,
      q,
      k,
      v,
      pageTable: c.shuffled ? shuffledPageTable(pages, c.seed) : undefined,
    });
    expect(out.every(Number.isFinite)).toBe(true);
    if (c.dtype === 'f32') {
      const { error, magnitude } = maxAbsError(out, reference(c, q, k, v));
      expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
    } else {
      const rounded = maxAbsError(out, reference(c, q, roundToFloat16(k), roundToFloat16(v)));
      expect(rounded.error).toBeLessThanOrEqual(1e-4 * rounded.magnitude);
      const exact = maxAbsError(out, reference(c, q, k, v));
      expect(exact.error).toBeLessThanOrEqual(5e-3 * exact.magnitude);
    }
  });

  // Sliding window + sinks in decode: every token but [start, start + length). Gaps that start and
  // end inside pages, one from token 0 (no sinks), one leaving a single window token; page tables
  // shuffled, f16 and f32, the workgroup-memory fallback.
  const gaps = [
    { caseName: 'fallback, group 4 f16', start: 4, length: 500 },
    { caseName: 'scores > 100 f16', start: 0, length: 201 },
    { caseName: 'scores > 100 f32', start: 7, length: 492 },
    { caseName: 'more splits than reduce lanes', start: 16, length: 2000 },
  ];
  it.each(gaps)(
    '$caseName, $length tokens skipped from $start: equals dense decode over the tokens read',
    async ({ caseName, start, length }) => {
      const c = cases.find((x) => x.name === caseName)!;
      const { q, k, v } = inputs(c);
      const row = c.numKvHeads * c.headDim;
      const kept = (x: Float32Array | Float64Array) =>
        Float64Array.from([...x.subarray(0, start * row), ...x.subarray((start + length) * row)]);
      const pages = pagesFor(c.kvLen, c.pageSize);
      const out = await denseDecodeOnHost(c.noSubgroups ? withoutSubgroups(ctx) : ctx, {
        numHeads: c.numHeads,
        numKvHeads: c.numKvHeads,
        headDim: c.headDim,
        kvLen: c.kvLen,
        scale: defaultScale(c.headDim) * (c.scaleFactor ?? 1),
        kv: { pageSize: c.pageSize, numKvHeads: c.numKvHeads, headDim: c.headDim, dtype: c.dtype },
        q,
        k,
        v,
        pageTable: shuffledPageTable(pages, c.seed),
        tokenGaps: Array(c.numKvHeads).fill({ start, length }),
      });
      const f16 = c.dtype === 'f16';
      const read = { ...c, kvLen: c.kvLen - length };
      const expected = reference(
        read,
        q,
        kept(f16 ? roundToFloat16(k) : k),
        kept(f16 ? roundToFloat16(v) : v),
      );
      const { error, magnitude } = maxAbsError(out, expected);
      expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
      // Unless one key dominates (peaked cases), the gap's tokens change the answer.
      if (!c.scaleFactor) {
        const whole = maxAbsError(out, reference(c, q, k, v));
        expect(whole.error).toBeGreaterThan(1e-2 * whole.magnitude);
      }
    },
  );

  // Ada-SnapKV's compacted cache: each KV head skips its own gap, so the heads read different
  // counts and the splits past a head's count hold nothing of it. f16 and the fallback, and f32.
  it.each([
    { caseName: 'group 4, many splits', noSubgroups: false },
    { caseName: 'fallback, group 4 f16', noSubgroups: true },
    { caseName: 'group 8, page 64', noSubgroups: false },
  ])('$caseName: a gap of its own per KV head', async ({ caseName, noSubgroups }) => {
    const c = { ...cases.find((x) => x.name === caseName)!, numKvHeads: 2 };
    c.numHeads = c.numKvHeads * (caseName.startsWith('group 8') ? 8 : 4);
    const { q, k, v } = inputs(c);
    const group = c.numHeads / c.numKvHeads;
    // Head 0 reads 30 tokens (20 kept, 10 decoded), head 1 the whole cache.
    const gaps = [
      { start: 20, length: c.kvLen - 30 },
      { start: 0, length: 0 },
    ];
    const scale = defaultScale(c.headDim);
    const out = await denseDecodeOnHost(noSubgroups ? withoutSubgroups(ctx) : ctx, {
      ...c,
      scale,
      kv: { pageSize: c.pageSize, numKvHeads: c.numKvHeads, headDim: c.headDim, dtype: c.dtype },
      q,
      k,
      v,
      pageTable: shuffledPageTable(pagesFor(c.kvLen, c.pageSize), c.seed),
      tokenGaps: gaps,
    });
    const f16 = c.dtype === 'f16';
    const [kKv, vKv] = [k, v].map((x) => (f16 ? roundToFloat16(x) : x));
    gaps.forEach(({ start, length }, g) => {
      // KV head g alone, its tokens outside the gap, its group's query heads.
      const tokens = Array.from({ length: c.kvLen }, (_, t) => t).filter(
        (t) => t < start || t >= start + length,
      );
      const rows = (x: ArrayLike<number>) =>
        Float64Array.from(
          tokens.flatMap((t) => {
            const at = (t * c.numKvHeads + g) * c.headDim;
            return Array.from({ length: c.headDim }, (_, d) => x[at + d]);
          }),
        );
      const heads = q.subarray(g * group * c.headDim, (g + 1) * group * c.headDim);
      const expected = attentionReference({
        numHeads: group,
        numKvHeads: 1,
        headDim: c.headDim,
        q: heads,
        k: rows(kKv),
        v: rows(vKv),
        numQueries: 1,
        qStart: tokens.length - 1,
        scale,
      });
      const got = out.subarray(g * group * c.headDim, (g + 1) * group * c.headDim);
      const { error, magnitude } = maxAbsError(got, expected);
      expect(error, `KV head ${g}`).toBeLessThanOrEqual(1e-4 * magnitude);
    });
  });

  it('the peaked cases really have scores far beyond exp overflow', () => {
    const c = cases.find((x) => x.name === 'scores > 100 f32')!;
    const { q, k } = inputs(c);
    const scale = defaultScale(c.headDim) * c.scaleFactor!;
    let largest = 0;
    for (let t = 0; t < c.kvLen; t++) {
      let dot = 0;
      for (let d = 0; d < c.headDim; d++) dot += q[d] * k[t * c.headDim + d];
      largest = Math.max(largest, Math.abs(dot * scale));
    }
    expect(largest).toBeGreaterThan(89);
  });

  it('splits long KV lengths into hundreds of workgroups of 512 tokens', () => {
    const params: DecodeParams = {
      numHeads: 32,
      numKvHeads: 8,
      headDim: 128,
      kvLen: 32768,
      scale: defaultScale(128),
      kv: { pageSize: 16, numKvHeads: 8, headDim: 128, dtype: 'f16' },
    };
    const plan = decodeSplitPlan(ctx, params);
    expect(plan.tokensPerSplit).toBe(512);
    expect(plan.numSplits).toBe(64);
    expect(plan.workgroups).toBe(512);
    const short = decodeSplitPlan(ctx, { ...params, kvLen: 100 });
    expect(short.numSplits * short.tokensPerSplit).toBeGreaterThanOrEqual(100);
    expect(short.numSplits).toBe(Math.ceil(100 / short.tokensPerSplit));
  });
});

// User patterns in decode: the row's block mask, each KV head reading the key blocks any query head
// of its group keeps, each query head weighing only its own keys.
describe('dense decode over a decoded row’s key blocks', () => {
  interface KeyBlockCase {
    caseName: string;
    block: number;
    keep: (h: number, j: number, kvLen: number) => boolean;
    noSubgroups?: boolean;
  }
  // Per query head: 20 sinks and a window of 70 to 94 keys (the last block is whole for the
  // group); the second head of three also every 7th key of 32 .. 63, the third keys 96 .. 127
  // (blocks the group's other heads skip). Further back, blocks no head keeps.
  const mixed = (h: number, j: number, kvLen: number) =>
    j < 20 ||
    kvLen - 1 - j < 70 + 8 * (h % 4) ||
    (h % 3 === 1 && j % 7 === 0 && j >= 32 && j < 64) ||
    (h % 3 === 2 && j >= 96 && j < 128);
  const keyBlockCases: KeyBlockCase[] = [
    { caseName: 'd 128 f32, split tail', block: 16, keep: mixed },
    { caseName: 'group 7, d 96 f16, page 64', block: 16, keep: mixed },
    { caseName: 'group 8, page 64', block: 16, keep: mixed },
    { caseName: 'scores > 100 f16', block: 64, keep: mixed },
    { caseName: 'fallback, group 4 f16', block: 64, keep: mixed, noSubgroups: true },
    { caseName: 'more splits than reduce lanes', block: 64, keep: mixed, noSubgroups: true },
    // The second KV head's query heads keep nothing: it lists no block, and they output 0.
    {
      caseName: 'group 4, many splits',
      block: 64,
      keep: (h, j, kvLen) => h < 4 && mixed(h, j, kvLen),
    },
  ];

  function maskOf(c: Case, block: number, keep: KeyBlockCase['keep']) {
    const geometry = { numHeads: c.numHeads, numQueries: 1, qStart: c.kvLen - 1 };
    return blockMaskFromMaskMod({ ...geometry, blockQ: block, blockK: block }, (_b, h, _q, j) =>
      keep(h, j, c.kvLen),
    );
  }

  async function decode(c: Case, keyBlocks: DecodeKeyBlocks | undefined, noSubgroups = false) {
    const { q, k, v } = inputs(c);
    return denseDecodeOnHost(noSubgroups ? withoutSubgroups(ctx) : ctx, {
      ...c,
      scale: defaultScale(c.headDim) * (c.scaleFactor ?? 1),
      kv: { pageSize: c.pageSize, numKvHeads: c.numKvHeads, headDim: c.headDim, dtype: c.dtype },
      q,
      k,
      v,
      pageTable: shuffledPageTable(pagesFor(c.kvLen, c.pageSize), c.seed),
      keyBlocks,
    });
  }

  it.each(keyBlockCases)(
    '$caseName, blocks of $block: equals sparse attention on the mask',
    async ({ caseName, block, keep, noSubgroups }) => {
      const c = cases.find((x) => x.name === caseName)!;
      const mask = maskOf(c, block, keep);
      const keyBlocks = decodeKeyBlocks(mask, c.numKvHeads);
      // Whole, partial and unread blocks, and heads of one group listing different blocks.
      const stride = keyBlocks.words[0];
      const slots = keyBlocks.blocks.flatMap((list, g) =>
        list.map((_, i) => keyBlocks.words[1 + c.numKvHeads + 2 * (g * stride + i) + 1]),
      );
      expect(slots).toContain(0xffffffff);
      expect(slots.some((slot) => slot !== 0xffffffff)).toBe(true);
      expect(keyBlocks.blocks[0].length).toBeLessThan(mask.numKeyBlocks);
      const group = c.numHeads / c.numKvHeads;
      const rows = Array.from({ length: group }, (_, h) =>
        String(mask.keyBlock.subarray(mask.rowStart[h], mask.rowStart[h + 1])),
      );
      expect(new Set(rows).size).toBeGreaterThan(1);
      const out = await decode(c, keyBlocks, noSubgroups);
      const { q, k, v } = inputs(c);
      const f16 = c.dtype === 'f16';
      const expected = sparseAttention(
        {
          ...c,
          q,
          k: f16 ? roundToFloat16(k) : k,
          v: f16 ? roundToFloat16(v) : v,
          numQueries: 1,
          qStart: c.kvLen - 1,
          scale: defaultScale(c.headDim) * (c.scaleFactor ?? 1),
        },
        mask,
      ).out;
      const { error, magnitude } = maxAbsError(out, expected);
      expect(magnitude).toBeGreaterThan(0);
      expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
      expect(out.every(Number.isFinite)).toBe(true);
      // The tokens read: every token of each listed block.
      keyBlocks.blocks.forEach((list, g) => {
        const tokens = list.reduce((n, kb) => n + Math.min(block, c.kvLen - kb * block), 0);
        expect(keyBlocks.tokensRead[g]).toBe(tokens);
      });
    },
  );

  it('a pattern keeping every key reads the whole cache: dense decode, bit for bit', async () => {
    const c = cases.find((x) => x.name === 'group 4, many splits')!;
    const keyBlocks = decodeKeyBlocks(
      maskOf(c, 64, () => true),
      c.numKvHeads,
    );
    expect(keyBlocks.keepsAll).toBe(true);
    expect(keyBlocks.tokensRead).toEqual([c.kvLen, c.kvLen]);
    const dense = await decode(c, undefined);
    expect(await decode(c, keyBlocks)).toEqual(dense);
    // The key-block path itself on whole blocks: the same tokens in the same order.
    expect(await decode(c, { ...keyBlocks, keepsAll: false })).toEqual(dense);
  });
});
