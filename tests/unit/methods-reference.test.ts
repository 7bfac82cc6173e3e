import { describe, expect, it } from 'vitest';
import { attentionReference, type ReferenceInput } from '../../src/kernels/attention.reference';
import { seededRandom } from '../../src/engine/random';
import { defaultScale } from '../../src/kernels/layout';
import { adaSnapKV } from '../../src/methods/reference/adaSnapKV';
import { blasst, blasstDecode, type BlasstParams } from '../../src/methods/reference/blasst';
import {
  blockSparse,
  nominalSparsity,
  paramsForSparsity as blockSparseParams,
} from '../../src/methods/reference/blockSparse';
import { coverCount, flexPrefill } from '../../src/methods/reference/flexPrefill';
import {
  BLOCK_FULL,
  BLOCK_PARTIAL,
  blockClass,
  blockCounts,
  blockMaskFromLists,
  blockMaskFromMaskMod,
  causalTotal,
  computedCount,
  denseMask,
  measuredSparsity,
  orMasks,
  rowEntries,
  rowKeep,
  verticalSlashMask,
  type BlockMask,
  type MaskMod,
} from '../../src/methods/reference/masks';
import { quest } from '../../src/methods/reference/quest';
import { topKIndices } from '../../src/methods/reference/select';
import {
  keptCount,
  paramsForSparsity as windowParams,
  slidingWindow,
} from '../../src/methods/reference/slidingWindow';
import { averagePool, compactedDecode, snapKV } from '../../src/methods/reference/snapKV';
import { sparseAttention } from '../../src/methods/reference/sparseAttention';
import {
  paramsForSparsity as verticalSlashParams,
  verticalSlash,
  VERTICAL_SLASH_DEFAULTS,
} from '../../src/methods/reference/verticalSlash';
import { maxAbsError, randomFloats } from '../support/random';

interface Shape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  numQueries: number;
  qStart?: number;
  seed?: number;
}

function randomInput(shape: Shape): ReferenceInput {
  const { numHeads, numKvHeads, headDim, numQueries, qStart = 0, seed = 1 } = shape;
  const keys = qStart + numQueries;
  return {
    numHeads,
    numKvHeads,
    headDim,
    numQueries,
    qStart,
    scale: defaultScale(headDim),
    q: randomFloats(numQueries * numHeads * headDim, seed),
    k: randomFloats(keys * numKvHeads * headDim, seed + 1),
    v: randomFloats(keys * numKvHeads * headDim, seed + 2),
  };
}

/** Brute-force kept elements of a mask, head by head, straight from rowKeep. */
function keptSet(mask: BlockMask, h: number): Set<string> {
  const keep = new Uint8Array(mask.numKeys);
  const set = new Set<string>();
  for (let i = 0; i < mask.numQueries; i++) {
    rowKeep(mask, h, i, keep);
    keep.forEach((x, j) => {
      if (x) set.add(`${i},${j}`);
    });
  }
  return set;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12): void {
  const { error, magnitude } = maxAbsError(actual, expected);
  expect(error).toBeLessThanOrEqual(tol * Math.max(1, magnitude));
}

describe('block masks', () => {
  it('a dense mask reproduces attentionReference bit for bit, with recall 1', () => {
    for (const shape of [
      { numHeads: 4, numKvHeads: 2, headDim: 8, numQueries: 37 },
      { numHeads: 2, numKvHeads: 1, headDim: 4, numQueries: 9, qStart: 20 },
    ]) {
      const input = randomInput(shape);
      const mask = denseMask({ ...input, blockQ: 8, blockK: 16 });
      const result = sparseAttention(input, mask);
      expect(result.out).toEqual(attentionReference(input));
      expect([...result.recall].every((r) => r === 1)).toBe(true);
      expect(measuredSparsity(mask)).toBe(0);
      expect(computedCount(mask)).toBe(causalTotal(input));
    }
  });

  it('classifies sliding-window blocks and counts their interactions by hand', () => {
    // 8 tokens, window 3, 1 sink: rows keep 1, 2, 3, 4, 4, 4, 4, 4 keys = 26 of 36.
    const shape = { numHeads: 1, numQueries: 8, qStart: 0 };
    const mask = slidingWindow(shape, { window: 3, sinks: 1, blockQ: 4, blockK: 4 });
    expect(computedCount(mask)).toBe(26);
    expect(keptCount(shape, 3, 1)).toBe(26);
    expect(measuredSparsity(mask)).toBeCloseTo(10 / 36, 15);
    const [s0, e0] = rowEntries(mask, 0, 0);
    const [s1, e1] = rowEntries(mask, 0, 1);
    expect([e0 - s0, e1 - s1]).toEqual([1, 2]);
    expect(blockClass(mask, s0)).toBe('full');
    expect([blockClass(mask, s1), blockClass(mask, s1 + 1)]).toEqual(['partial', 'partial']);
    expect(blockCounts(mask)).toEqual({ touched: 3, full: 1, partial: 2, causal: 3 });
  });

  it('converts a mask_mod exactly: bitset partial blocks, full and empty blocks', () => {
    const shape = { numHeads: 3, numQueries: 40, qStart: 5, blockQ: 8, blockK: 8 };
    // Pseudo-random per element, plus a head whose early rows are fully kept.
    const hash = (h: number, q: number, kv: number) => ((q * 73856093) ^ (kv * 19349663) ^ h) & 7;
    const maskMod: MaskMod = (_b, h, q, kv) =>
      h === 2 ? q < 13 || kv >= q - 2 : hash(h, q, kv) < 3;
    const mask = blockMaskFromMaskMod(shape, maskMod);
    let expected = 0;
    for (let h = 0; h < 3; h++) {
      const kept = keptSet(mask, h);
      for (let i = 0; i < 40; i++) {
        for (let j = 0; j <= 5 + i; j++) {
          const want = maskMod(0, h, 5 + i, j);
          expect(kept.has(`${i},${j}`)).toBe(want);
          if (want) expected++;
        }
      }
    }
    expect(computedCount(mask)).toBe(expected);
    expect(blockClass(mask, rowEntries(mask, 2, 0)[0])).toBe('full');
    expect(mask.rule.kind).toBe('bitset');
  });

  it('a mask_mod that ignores h, converted once for every head, equals the per-head conversion', () => {
    const shape = { numHeads: 3, numQueries: 40, qStart: 5, blockQ: 8, blockK: 8 };
    const hash = (q: number, kv: number) => ((q * 73856093) ^ (kv * 19349663)) & 7;
    const maskMod: MaskMod = (_b, _h, q, kv) => q - kv < 6 || hash(q, kv) < 2;
    const heads: number[] = [];
    const once = blockMaskFromMaskMod(
      shape,
      (b, h, q, kv) => {
        heads.push(h);
        return maskMod(b, h, q, kv);
      },
      { sameForEveryHead: true },
    );
    const perHead = blockMaskFromMaskMod(shape, maskMod);
    expect(new Set(heads)).toEqual(new Set([0]));
    for (let h = 0; h < 3; h++) expect(keptSet(once, h)).toEqual(keptSet(perHead, h));
    expect(Array.from(once.rowStart)).toEqual(Array.from(perHead.rowStart));
    expect(Array.from(once.keyBlock)).toEqual(Array.from(perHead.keyBlock));
    expect(Array.from(once.blockKind)).toEqual(Array.from(perHead.blockKind));
    expect(computedCount(once)).toBe(computedCount(perHead));
  });

  it('partial blocks with equal bits share one bitset: a window per head', () => {
    const shape = { numHeads: 4, numQueries: 200, qStart: 56, blockQ: 16, blockK: 16 };
    // Head h keeps a window of 20 + 8h keys: every query block's edge blocks repeat the head's cut.
    const maskMod: MaskMod = (_b, h, q, kv) => q - kv < 20 + 8 * h;
    const mask = blockMaskFromMaskMod(shape, maskMod);
    if (mask.rule.kind !== 'bitset') throw new Error('expected a bitset rule');
    const { slot, bits, wordsPerBlock } = mask.rule;
    const partial = Array.from(slot).filter((s) => s >= 0);
    const distinct = bits.length / wordsPerBlock;
    expect(new Set(partial).size).toBe(distinct);
    expect(distinct).toBeLessThan(partial.length / 4);
    for (let a = 0; a < distinct; a++) {
      for (let b = a + 1; b < distinct; b++) {
        const bitsA = bits.subarray(a * wordsPerBlock, (a + 1) * wordsPerBlock);
        const bitsB = bits.subarray(b * wordsPerBlock, (b + 1) * wordsPerBlock);
        expect(Array.from(bitsA)).not.toEqual(Array.from(bitsB));
      }
    }
    for (let h = 0; h < 4; h++) {
      const kept = keptSet(mask, h);
      for (let i = 0; i < 200; i++) {
        for (let j = 0; j <= 56 + i; j++)
          expect(kept.has(`${i},${j}`)).toBe(56 + i - j < 20 + 8 * h);
      }
    }
  });

  it('builds block lists in any order into ascending rows, and rejects invalid blocks', () => {
    const geometry = { numHeads: 2, numQueries: 20, qStart: 4, blockQ: 8, blockK: 8 };
    const mask = blockMaskFromLists(geometry, (h, qb) =>
      h === 0 ? [Math.min(qb + 1, 2), 0] : [qb],
    );
    expect(Array.from(mask.rowStart)).toEqual([0, 2, 4, 6, 7, 8, 9]);
    expect(Array.from(mask.keyBlock)).toEqual([0, 1, 0, 2, 0, 2, 0, 1, 2]);
    // Query block 0 (rows 0-7 at positions 4-11) sees key blocks 0 and 1 only.
    for (const bad of [[2], [-1], [0, 0]]) {
      expect(() => blockMaskFromLists(geometry, () => bad)).toThrow(/invalid key block/);
    }
  });

  it('orMasks of a window and sinks equals the sliding-window rule', () => {
    const shape = { numHeads: 1, numQueries: 30, qStart: 3 };
    const window: MaskMod = (_b, _h, q, kv) => q - kv < 5;
    const sinks: MaskMod = (_b, _h, _q, kv) => kv < 2;
    const fromMod = blockMaskFromMaskMod(
      { ...shape, blockQ: 4, blockK: 8 },
      orMasks(window, sinks),
    );
    const rule = slidingWindow(shape, { window: 5, sinks: 2, blockQ: 4, blockK: 8 });
    expect(keptSet(fromMod, 0)).toEqual(keptSet(rule, 0));
    expect(blockCounts(fromMod)).toEqual(blockCounts(rule));
  });

  it('vertical-slash masks equal the mask_mod conversion, heads alike (one classified) or not', () => {
    const shape = { numHeads: 3, numQueries: 30, qStart: 3, blockQ: 4, blockK: 8 };
    const columns = (h: number) => (h === 1 ? [0, 1, 17] : [0, 1]);
    const diagonals = () => [0, 1, 2, 3, 4, 9];
    const cases = [
      { alike: true, cols: () => [0, 1] },
      { alike: false, cols: columns },
    ];
    for (const { alike, cols } of cases) {
      const mask = verticalSlashMask(shape, cols, diagonals);
      const fromMod = blockMaskFromMaskMod(
        shape,
        (_b, h, q, kv) => cols(h).includes(kv) || diagonals().includes(q - kv),
      );
      for (let h = 0; h < 3; h++)
        expect(keptSet(mask, h), `alike ${alike}`).toEqual(keptSet(fromMod, h));
      expect(blockCounts(mask)).toEqual(blockCounts(fromMod));
      expect(Array.from(mask.rowStart)).toEqual(Array.from(fromMod.rowStart));
      expect(Array.from(mask.blockKind)).toEqual(Array.from(fromMod.blockKind));
    }
  });

  it('vertical-slash classification by words equals the element-wise one (32-bit edges, runs)', () => {
    const random = seededRandom(21);
    const numQueries = 150;
    const qStart = 37;
    const numKeys = qStart + numQueries;
    // Per head: scattered bits, long runs (whole blocks kept: full by columns or by diagonals),
    // and nothing at all.
    const pick = (h: number) => {
      const set = new Set<number>();
      for (let b = 0; b < numKeys; b++) {
        if (h === 0 ? random() < 0.08 : h === 1 ? b % 97 < 70 : false) set.add(b);
      }
      return set;
    };
    const columnSets = [0, 1, 2].map(pick);
    const diagonalSets = [0, 1, 2].map((h) => (h === 2 ? new Set([0, 1, 2, 40]) : pick(h)));
    for (const [blockQ, blockK] of [
      [16, 16],
      [64, 64],
      [16, 64],
      [64, 16],
    ]) {
      const shape = { numHeads: 3, numQueries, qStart, blockQ, blockK };
      const mask = verticalSlashMask(
        shape,
        (h) => columnSets[h],
        (h) => diagonalSets[h],
      );
      const fromMod = blockMaskFromMaskMod(
        shape,
        (_b, h, q, kv) => columnSets[h].has(kv) || diagonalSets[h].has(q - kv),
      );
      const label = `${blockQ}x${blockK}`;
      expect(Array.from(mask.rowStart), label).toEqual(Array.from(fromMod.rowStart));
      expect(Array.from(mask.keyBlock), label).toEqual(Array.from(fromMod.keyBlock));
      expect(Array.from(mask.blockKind), label).toEqual(Array.from(fromMod.blockKind));
      expect(mask.blockKind, label).toContain(BLOCK_FULL);
      expect(mask.blockKind, label).toContain(BLOCK_PARTIAL);
    }
  });

  it('recall and output match a hand computation', () => {
    // Scores 0, ln 2, ln 3 (weights 1, 2, 3 of 6); keys 0 and 2 kept: recall 4/6.
    const input: ReferenceInput = {
      numHeads: 1,
      numKvHeads: 1,
      headDim: 1,
      numQueries: 1,
      qStart: 2,
      scale: 1,
      q: [1],
      k: [0, Math.log(2), Math.log(3)],
      v: [10, 20, 30],
    };
    const mask = blockMaskFromMaskMod(
      { numHeads: 1, numQueries: 1, qStart: 2, blockQ: 1, blockK: 2 },
      (_b, _h, _q, kv) => kv !== 1,
    );
    const result = sparseAttention(input, mask);
    expect(result.recall[0]).toBeCloseTo(4 / 6, 15);
    expect(result.out[0]).toBeCloseTo((1 * 10 + 3 * 30) / 4, 12);
    expect(measuredSparsity(mask)).toBeCloseTo(1 / 3, 15);
  });

  it('topKIndices breaks ties by lower index', () => {
    expect(topKIndices([1, 3, 3, Infinity, 1, 3], 4)).toEqual([3, 1, 2, 5]);
  });
});

describe('sparsity 0 reproduces dense attention', () => {
  const input = randomInput({ numHeads: 4, numKvHeads: 2, headDim: 8, numQueries: 48, seed: 7 });
  const dense = attentionReference(input);
  const L = 48;
  const cases: [string, () => BlockMask][] = [
    [
      'vertical-slash',
      () =>
        verticalSlash(input, { ...VERTICAL_SLASH_DEFAULTS, verticalSize: L, slashSize: L }).mask,
    ],
    [
      'flexprefill',
      () =>
        flexPrefill(input, {
          alpha: 0.65,
          approximationSize: 16,
          minBudget: L,
          sinkColumns: 4,
          localDiagonals: 8,
          blockQ: 16,
          blockK: 16,
        }).mask,
    ],
    ['block-sparse', () => blockSparse(input, { chunkSize: 16, topChunks: 3 }).mask],
    ['sliding window', () => slidingWindow(input, { window: L, sinks: 4, blockQ: 16, blockK: 8 })],
    [
      'blasst lambda 0',
      () => blasst(input, { blockQ: 16, blockK: 16, order: 'natural', lambda: 0 }).mask,
    ],
  ];
  it.each(cases)('%s', (_name, build) => {
    const mask = build();
    expect(measuredSparsity(mask)).toBe(0);
    expect(sparseAttention(input, mask).out).toEqual(dense);
  });

  it('quest with the whole cache in budget, and snapKV keeping every token', () => {
    const decode = randomInput({
      numHeads: 4,
      numKvHeads: 2,
      headDim: 8,
      numQueries: 1,
      qStart: 40,
      seed: 9,
    });
    const result = quest(decode, { pageSize: 8, tokenBudget: 48 });
    expect(result.sparsity).toBe(0);
    expect(result.out).toEqual(attentionReference(decode));
    const snap = snapKV(input, {
      capacity: L,
      window: 8,
      poolKernel: 5,
      localWindow: 4,
      prefixTokens: 2,
    });
    expect(snap.kept.every((list) => list.length === L)).toBe(true);
  });
});

describe('vertical-slash and flexprefill', () => {
  it('picks a key column with huge scores and a planted diagonal', () => {
    const L = 64;
    const D = 16;
    const input = randomInput({ numHeads: 2, numKvHeads: 1, headDim: D, numQueries: L, seed: 3 });
    const q = input.q as Float32Array;
    const k = input.k as Float32Array;
    q.fill(0);
    k.fill(0);
    // Head 0: every query has channel 0 = 1 and key 30 has channel 0 = 8: a vertical line.
    // Head 1: query i has channel 1 + (i mod 7), key j channel 1 + ((j + 5) mod 7): diagonal 5
    // (and 12, 19, ...), with diagonal 5 the longest of them.
    for (let i = 0; i < L; i++) {
      q[(i * 2 + 0) * D + 0] = 1;
      q[(i * 2 + 1) * D + 1 + (i % 7)] = 4;
      k[i * D + 1 + ((i + 5) % 7)] = 4;
    }
    k[30 * D] = 8;
    const params = {
      ...VERTICAL_SLASH_DEFAULTS,
      verticalSize: 5,
      slashSize: 3,
      lastQ: 16,
      localDiagonals: 2,
      blockQ: 16,
      blockK: 16,
    };
    const { columns, diagonals, mask } = verticalSlash(input, params);
    expect(columns[0]).toEqual([0, 1, 2, 3, 30]);
    expect(diagonals[1]).toEqual([0, 1, 5]);
    // Measured sparsity equals a brute-force count of the union of columns and diagonals.
    let kept = 0;
    for (let h = 0; h < 2; h++) {
      const set = keptSet(mask, h);
      for (let i = 0; i < L; i++) {
        for (let j = 0; j <= i; j++) {
          const want = columns[h].includes(j) || diagonals[h].includes(i - j);
          expect(set.has(`${i},${j}`)).toBe(want);
          if (want) kept++;
        }
      }
    }
    expect(computedCount(mask)).toBe(kept);
    expect(measuredSparsity(mask)).toBeCloseTo(1 - kept / (2 * ((L * (L + 1)) / 2)), 15);
    expect(mask.rule.kind).toBe('vertical-slash');
  });

  it('maps sparsity to equal vertical and slash sizes, monotonically', () => {
    const sizes = [0, 0.5, 0.8, 0.95].map((s) => verticalSlashParams(s, 4096).verticalSize);
    expect(sizes[0]).toBe(4096);
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]).toBeLessThan(sizes[i - 1]);
    const params = verticalSlashParams(0.9, 4096);
    expect(params.slashSize).toBe(params.verticalSize);
  });

  it('coverCount follows the reference formula, including the exact-hit case', () => {
    expect(coverCount([0.2, 0.5, 0.3], 0.65)).toBe(2);
    expect(coverCount([0.2, 0.5, 0.3], 0.8)).toBe(3);
    expect(coverCount([0.2, 0.5, 0.3], 1)).toBe(3);
  });

  it('gives a concentrated head fewer columns than a diffuse head, at least min_budget', () => {
    const L = 64;
    const D = 8;
    const input = randomInput({ numHeads: 2, numKvHeads: 2, headDim: D, numQueries: L, seed: 5 });
    const q = input.q as Float32Array;
    const k = input.k as Float32Array;
    q.fill(0);
    k.fill(0);
    for (let i = 0; i < L; i++) q[i * 2 * D] = 10;
    k[20 * 2 * D] = 10;
    const params = {
      alpha: 0.65,
      approximationSize: 16,
      minBudget: 1,
      sinkColumns: 4,
      localDiagonals: 2,
      blockQ: 16,
      blockK: 16,
    };
    const result = flexPrefill(input, params);
    expect(result.verticalSizes[0]).toBe(1);
    // Below the sink count, the reference's top-k keeps only the first sinks.
    expect(result.columns[0]).toEqual([0]);
    expect(result.verticalSizes[1]).toBeGreaterThan(20);
    const floored = flexPrefill(input, { ...params, minBudget: 10 });
    expect(floored.verticalSizes[0]).toBe(10);
    expect(floored.columns[0]).toContain(20);
  });
});

describe('block-sparse', () => {
  const L = 128;
  const D = 8;
  const input = randomInput({ numHeads: 2, numKvHeads: 1, headDim: D, numQueries: L, seed: 11 });
  const q = input.q as Float32Array;
  const k = input.k as Float32Array;
  for (let i = 0; i < L; i++) q[(i * 2 + 1) * D] = i >= 112 ? 5 : 0;
  for (let j = 32; j < 48; j++) k[j * D] = 5;

  it('keeps a planted high-score block plus the first, diagonal and previous blocks', () => {
    const { blocks } = blockSparse(input, { chunkSize: 16, topChunks: 4 });
    expect(blocks[1][7]).toEqual([0, 2, 6, 7]);
    expect(blocks[0][2]).toEqual([0, 1, 2]);
    expect(blocks[1][5].length).toBe(4);
  });

  it('counts computed interactions and blocks by hand', () => {
    const { mask } = blockSparse(input, { chunkSize: 16, topChunks: 4 });
    // Per head: 8 diagonal blocks of 136 causal cells, 0+1+2+3+3*4 off-diagonal blocks of 256.
    expect(computedCount(mask)).toBe(2 * (8 * 136 + 18 * 256));
    expect(measuredSparsity(mask)).toBeCloseTo(1 - 5696 / 8256, 15);
    expect(blockCounts(mask)).toEqual({ touched: 52, full: 52, partial: 0, causal: 72 });
    expect(1 - blockCounts(mask).touched / blockCounts(mask).causal).toBeCloseTo(
      nominalSparsity(8, 4),
      15,
    );
  });

  it('maps sparsity to top_chunks', () => {
    expect(blockSparseParams(0, 128).topChunks).toBe(8);
    for (const s of [0.5, 0.8, 0.95]) {
      const t = blockSparseParams(s, 4096).topChunks;
      const miss = (n: number) => Math.abs(nominalSparsity(256, n) - s);
      expect(miss(t)).toBeLessThanOrEqual(Math.min(miss(t - 1), miss(t + 1)));
    }
  });
});

describe('BLASST', () => {
  /** One head, channel 0 of query = 1 and key j = a[j / 16]; scale 1. */
  function planted(
    blockScores: number[],
    numQueries = blockScores.length * 16,
    qStart = 0,
  ): ReferenceInput {
    const keys = qStart + numQueries;
    const q = new Float32Array(numQueries * 2);
    const k = new Float32Array(keys * 2);
    const v = randomFloats(keys * 2, 13);
    for (let i = 0; i < numQueries; i++) q[i * 2] = 1;
    for (let j = 0; j < keys; j++) k[j * 2] = blockScores[Math.floor(j / 16)];
    return { numHeads: 1, numKvHeads: 1, headDim: 2, numQueries, qStart, scale: 1, q, k, v };
  }
  const base: BlasstParams = { blockQ: 16, blockK: 16, order: 'natural', lambda: 0 };

  it('lambda 0 skips nothing and matches the reference', () => {
    const input = randomInput({ numHeads: 4, numKvHeads: 2, headDim: 8, numQueries: 50, seed: 2 });
    const result = blasst(input, base);
    expect([...result.skipped]).toEqual([0, 0, 0, 0]);
    expectClose(result.out, attentionReference(input));
    expect(measuredSparsity(result.mask)).toBe(0);
  });

  it('a large lambda skips the planted low-score blocks, and only those', () => {
    const input = planted([5, -20, -20, 5]);
    const result = blasst(input, { ...base, lambda: 1e-3 });
    expect([...result.skipped, ...result.kept]).toEqual([5, 5]);
    expect([0, 1, 2, 3].map((qb) => keptBlocks(result.mask, qb))).toEqual([[0], [0], [0], [0, 3]]);
    expect(result.meanRecall[0]).toBeGreaterThan(1 - 1e-9);
    expectClose(result.out, sparseAttention(input, result.mask).out);
  });

  function keptBlocks(mask: BlockMask, qb: number): number[] {
    const [start, end] = rowEntries(mask, 0, qb);
    return [...mask.keyBlock.slice(start, end)];
  }

  it('makes the skip decision uniform over the row group', () => {
    // Rows 16..31: block 0 scores 5 (row 20: 0); block 1 scores 0 except key 16 (-20), and row
    // 20 scores 5 on key 17. With lambda 0.01 only row 20 needs block 1.
    const q = new Float32Array(32 * 2);
    const k = new Float32Array(32 * 2);
    for (let i = 0; i < 32; i++) q[i * 2] = 1;
    q[20 * 2] = 0;
    q[20 * 2 + 1] = 1;
    for (let j = 0; j < 16; j++) k[j * 2] = 5;
    k[16 * 2] = -20;
    k[17 * 2 + 1] = 5;
    const input: ReferenceInput = {
      numHeads: 1,
      numKvHeads: 1,
      headDim: 2,
      numQueries: 32,
      qStart: 0,
      scale: 1,
      q,
      k,
      v: randomFloats(64, 17),
    };
    const grouped = blasst(input, { ...base, lambda: 0.01 });
    expect([grouped.skipped[0], grouped.kept[0]]).toEqual([0, 3]);
    const perRow = blasst(input, { ...base, blockQ: 1, lambda: 0.01 });
    expect([perRow.skipped[0], perRow.kept[0]]).toEqual([15, 33]);
    expect(keptBlocks(perRow.mask, 20)).toEqual([0, 1]);
    expect(keptBlocks(perRow.mask, 21)).toEqual([0]);
  });

  it('visiting the sink and the most recent block first skips more', () => {
    const input = planted([0, -3, -3, 8]);
    const natural = blasst(input, { ...base, lambda: 0.01 });
    const recentFirst = blasst(input, { ...base, order: 'sink-recent-first', lambda: 0.01 });
    expect(natural.skipped[0]).toBe(0);
    expect(recentFirst.skipped[0]).toBe(3);
    expectClose(recentFirst.out, sparseAttention(input, recentFirst.mask).out);
    expect(recentFirst.meanRecall[0]).toBeGreaterThan(0.99);
  });

  it('decode: one query, per-block skips', () => {
    const input = planted([5, -20, -20, 5], 1, 63);
    const dense = blasstDecode(input, { blockK: 16, order: 'natural', lambda: 0 });
    expectClose(dense.out, attentionReference(input));
    const sparse = blasstDecode(input, { blockK: 16, order: 'natural', lambda: 1e-3 });
    expect([sparse.skipped[0], sparse.kept[0]]).toEqual([2, 2]);
    expect(measuredSparsity(sparse.mask)).toBe(0.5);
  });
});

describe('sliding window', () => {
  it('maps sparsity to the window exactly', () => {
    // With 4 sinks, a window of 252 already keeps everything.
    expect(windowParams(0, 256).window).toBe(252);
    const { window } = windowParams(0.75, 256);
    const shape = { numHeads: 1, numQueries: 256, qStart: 0 };
    const mask = slidingWindow(shape, { window, sinks: 4, blockQ: 16, blockK: 16 });
    expect(computedCount(mask)).toBe(keptCount(shape, window, 4));
    expect(Math.abs(measuredSparsity(mask) - 0.75)).toBeLessThan(0.01);
  });
});

describe('Quest', () => {
  it('picks the page holding the key aligned with q, plus the current page', () => {
    const L = 133; // 8 full pages of 16 and a current page of 5 tokens
    const input = randomInput({
      numHeads: 4,
      numKvHeads: 2,
      headDim: 8,
      numQueries: 1,
      qStart: L - 1,
      seed: 21,
    });
    const k = input.k as Float32Array;
    const q = input.q as Float32Array;
    for (let d = 0; d < 8; d++) k[(50 * 2 + 1) * 8 + d] = 10 * q[2 * 8 + d];
    const result = quest(input, { pageSize: 16, tokenBudget: 16 });
    expect(result.pages[1]).toEqual([3, 8]);
    expect(result.pagesRead).toBe(4);
    expect(result.summaryPagesRead).toBe(18);
    expect(result.sparsity).toBeCloseTo(1 - 21 / 133, 15);
    expect(computedCount(result.mask)).toBe(4 * 21);
    // The bound holds: for every key of a page, sum over the group of q.k <= bound.
    for (let g = 0; g < 2; g++) {
      for (let p = 0; p < 8; p++) {
        for (let t = p * 16; t < p * 16 + 16; t++) {
          let dot = 0;
          for (let h = 2 * g; h < 2 * g + 2; h++) {
            for (let d = 0; d < 8; d++) dot += q[h * 8 + d] * k[(t * 2 + g) * 8 + d];
          }
          expect(dot).toBeLessThanOrEqual(result.bounds[g][p] + 1e-12);
        }
      }
    }
  });

  it('shares pages across the GQA group by summing the bounds', () => {
    const q = new Float32Array(2 * 2);
    const k = new Float32Array(100 * 2);
    q[0] = 1; // head 0 looks along channel 0
    q[3] = 1; // head 1 along channel 1
    k[40 * 2] = 3; // page 2 (of 10) scores 3 for head 0
    k[90 * 2 + 1] = 10; // page 5 scores 10 for head 1
    const input: ReferenceInput = {
      numHeads: 2,
      numKvHeads: 1,
      headDim: 2,
      numQueries: 1,
      qStart: 99,
      scale: 1,
      q,
      k,
      v: randomFloats(200, 3),
    };
    const result = quest(input, { pageSize: 16, tokenBudget: 16 });
    expect(result.pages[0]).toEqual([5, 6]);
  });
});

describe('SnapKV and Ada-SnapKV', () => {
  const params = { capacity: 40, window: 16, poolKernel: 5, localWindow: 8, prefixTokens: 4 };

  it('pools like avg_pool1d with zero padding counted', () => {
    expect([...averagePool(Float64Array.from([0, 0, 6, 0, 0]), 3)]).toEqual([0, 2, 2, 2, 0]);
  });

  it('keeps the planted token, the always-kept ones, exactly capacity per KV head', () => {
    const L = 120;
    const D = 8;
    const input = randomInput({ numHeads: 4, numKvHeads: 2, headDim: D, numQueries: L, seed: 31 });
    const q = input.q as Float32Array;
    const k = input.k as Float32Array;
    for (let i = L - 16; i < L; i++) q[(i * 4 + 2) * D] = 6; // head 2 -> KV head 1
    k[(70 * 2 + 1) * D] = 6;
    const { kept } = snapKV(input, params);
    for (const list of kept) {
      expect(list.length).toBe(40);
      for (const t of [0, 1, 2, 3, ...Array.from({ length: 8 }, (_, i) => L - 8 + i)]) {
        expect(list).toContain(t);
      }
    }
    expect(kept[1]).toContain(70);
    // Decode one generated token over the compacted cache: 40 prompt tokens + itself.
    const decode = randomInput({
      numHeads: 4,
      numKvHeads: 2,
      headDim: D,
      numQueries: 1,
      qStart: L,
    });
    const compacted = compactedDecode(decode, kept, L);
    expect(computedCount(compacted.mask)).toBe(4 * 41);
    expect(compacted.sparsity).toBeCloseTo(1 - 41 / (L + 1), 15);
    const everything = [0, 1].map(() => Array.from({ length: L }, (_, t) => t));
    const full = compactedDecode(decode, everything, L);
    expect(full.out).toEqual(attentionReference(decode));
  });

  it('Ada-SnapKV gives a concentrated head less budget than a diffuse one', () => {
    const L = 200;
    const D = 8;
    const input = randomInput({ numHeads: 2, numKvHeads: 2, headDim: D, numQueries: L, seed: 41 });
    const q = input.q as Float32Array;
    const k = input.k as Float32Array;
    q.fill(0);
    k.fill(0);
    for (let i = 0; i < L; i++) q[i * 2 * D] = 20;
    k[100 * 2 * D] = 1;
    const result = adaSnapKV(input, { ...params, capacity: 60, minRatio: 0.2 });
    expect(result.minPerHead).toBe(12);
    expect(result.budgets[0] + result.budgets[1]).toBe(120);
    expect(result.budgets[0]).toBeLessThan(result.budgets[1]);
    expect(Math.min(...result.budgets)).toBeGreaterThanOrEqual(12);
    expect(result.kept[0]).toContain(100);
  });
});
