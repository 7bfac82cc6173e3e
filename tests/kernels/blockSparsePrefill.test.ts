import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { roundToFloat16 } from '../../src/gpu/f16';
import {
  blockSparsePrefillOnHost,
  blockSparseTileConfig,
  type BlockSparseTileConfig,
} from '../../src/kernels/blockSparsePrefill';
import { densePrefillOnHost, type HostPrefillInput } from '../../src/kernels/densePrefill';
import { defaultScale, type KvDtype } from '../../src/kernels/layout';
import { pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import { blockSparse } from '../../src/methods/reference/blockSparse';
import {
  blockCounts,
  blockMaskFromLists,
  blockMaskFromMaskMod,
  causalKeyBlocks,
  denseMask,
  measuredSparsity,
  verticalSlashMask,
  type BlockMask,
  type MaskGeometry,
} from '../../src/methods/reference/masks';
import { slidingWindow } from '../../src/methods/reference/slidingWindow';
import { sparseAttention } from '../../src/methods/reference/sparseAttention';
import { maxAbsError, randomFloats, seededRandom } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

interface Case {
  numQueries: number;
  qStart: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  pageSize: number;
  dtype: KvDtype;
  seed: number;
}

function makeInput(c: Case): HostPrefillInput {
  const kvLen = c.qStart + c.numQueries;
  const kvCount = kvLen * c.numKvHeads * c.headDim;
  return {
    ...c,
    scale: defaultScale(c.headDim),
    kv: { pageSize: c.pageSize, numKvHeads: c.numKvHeads, headDim: c.headDim, dtype: c.dtype },
    q: randomFloats(c.numQueries * c.numHeads * c.headDim, c.seed),
    k: randomFloats(kvCount, c.seed + 1),
    v: randomFloats(kvCount, c.seed + 2),
    pageTable: shuffledPageTable(pagesFor(kvLen, c.pageSize), c.seed),
  };
}

function geometry(c: Case, block: number): MaskGeometry {
  return { ...c, blockQ: block, blockK: block };
}

/** Kept key blocks per mask row, from the CSR row starts. */
function rowCounts(mask: BlockMask): Uint32Array {
  return mask.rowStart.slice(1).map((end, r) => end - mask.rowStart[r]);
}

/**
 * Runs the kernel and checks it against sparseAttention (on f16-rounded K and V for f16 KV) at
 * 1e-4 of the output's magnitude, and its block counts against the mask's exactly.
 */
async function expectMatchesReference(
  input: HostPrefillInput,
  mask: BlockMask,
  config?: BlockSparseTileConfig,
) {
  const result = await blockSparsePrefillOnHost(ctx, input, mask, config);
  const rounded =
    input.kv.dtype === 'f16'
      ? { ...input, k: roundToFloat16(input.k), v: roundToFloat16(input.v) }
      : input;
  const check = maxAbsError(result.out, sparseAttention(rounded, mask).out);
  expect(check.magnitude).toBeGreaterThan(0);
  expect(check.error).toBeLessThanOrEqual(1e-4 * check.magnitude);
  expect(result.blockCounts).toEqual(rowCounts(mask));
  expect(result.blockCounts.reduce((a, b) => a + b, 0)).toBe(blockCounts(mask).touched);
  return { ...result, check };
}

const d64 = { headDim: 64, numKvHeads: 1, pageSize: 16, dtype: 'f32' } as const;
const d128 = { headDim: 128, numKvHeads: 2, pageSize: 32, dtype: 'f16' } as const;

describe('block-sparse causal prefill attention', () => {
  it('rejects block sizes it does not support', () => {
    expect(() => blockSparseTileConfig(ctx, 64, 32, 32)).toThrow(/supports blocks of 16 or 64/);
    expect(() => blockSparseTileConfig(ctx, 64, 64, 128)).toThrow(/blockK=128/);
    for (const headDim of [64, 128]) {
      for (const block of [16, 64]) {
        const config = blockSparseTileConfig(ctx, headDim, block, block);
        expect(config.workgroupBytes).toBeLessThanOrEqual(ctx.caps.maxWorkgroupStorageBytes);
        expect(config.threads).toBeLessThanOrEqual(ctx.caps.maxInvocationsPerWorkgroup);
      }
    }
  });

  it('reproduces the dense kernel with a fully kept mask (GQA 4, d=64, 64x64)', async () => {
    const c: Case = { ...d64, numQueries: 100, qStart: 0, numHeads: 4, seed: 1 };
    const input = makeInput(c);
    const mask = denseMask(geometry(c, 64));
    const { out, blockCounts: counts } = await expectMatchesReference(input, mask);
    const dense = maxAbsError(out, await densePrefillOnHost(ctx, input));
    expect(dense.error).toBeLessThanOrEqual(1e-4 * dense.magnitude);
    const expected = Array.from({ length: 4 }, () => [1, 2]).flat();
    expect(Array.from(counts)).toEqual(expected);
    expect(causalKeyBlocks(mask, 1)).toBe(2);
  });

  it('follows sliding window + sinks and vertical-slash masks (qStart > 0, GQA 4)', async () => {
    const c: Case = { ...d64, numQueries: 150, qStart: 37, numHeads: 4, seed: 2 };
    const input = makeInput(c);
    const window = slidingWindow(c, { window: 40, sinks: 4, blockQ: 64, blockK: 64 });
    expect(window.blockKind).toContain(1);
    expect(measuredSparsity(window)).toBeGreaterThan(0.3);
    await expectMatchesReference(input, window);
    const random = seededRandom(3);
    const pick = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 187));
    const columns = [0, 1, 2, 3].map(() => [0, ...pick(6)]);
    const diagonals = [0, 1, 2, 3].map(() => [0, 1, ...pick(5)]);
    const mask = verticalSlashMask(
      geometry(c, 64),
      (h) => columns[h],
      (h) => diagonals[h],
    );
    expect(mask.blockKind).toContain(1);
    await expectMatchesReference(input, mask);
  });

  it('follows a Block-Sparse top-k mask (16x16 blocks, GQA 4, d=64)', async () => {
    const c: Case = { ...d64, numQueries: 90, qStart: 32, numHeads: 4, seed: 4 };
    const input = makeInput(c);
    const { mask } = blockSparse(input, { chunkSize: 16, topChunks: 3 });
    expect(measuredSparsity(mask)).toBeGreaterThan(0.2);
    await expectMatchesReference(input, mask);
  });

  it('follows a mask_mod bitset mask (16x16 blocks at d=128, f16 KV; 64x64 at d=64)', async () => {
    // Rows with no kept key at all (q % 11 == 5 keeps none) must come out as 0.
    const maskMod = (_b: number, h: number, q: number, kv: number) =>
      q % 11 !== 5 && ((q + kv + h) % 3 === 0 || kv < 2 || q >> 4 === kv >> 4);
    // 64-key blocks span two 32-key segments of a K/V tile: each reads its own half of a bitset row.
    for (const [block, dims] of [
      [16, d128],
      [64, d64],
    ] as const) {
      const c: Case = { ...dims, numQueries: 83, qStart: 13, numHeads: 2, seed: 5 };
      const mask = blockMaskFromMaskMod(geometry(c, block), maskMod);
      expect(mask.rule.kind).toBe('bitset');
      expect(mask.blockKind).toContain(1);
      await expectMatchesReference(makeInput(c), mask);
    }
  });

  it('query tiles of several mask rows: union of their lists, counts per mask row (64x64, 16x16)', async () => {
    const c: Case = { ...d64, numQueries: 300, qStart: 37, numHeads: 4, seed: 7 };
    const input = makeInput(c);
    const random = seededRandom(8);
    // Per row: its diagonal block and a random third of the others, so the two mask rows of a
    // 128-query tile list some blocks together and some alone.
    const g = geometry(c, 64);
    const lists = Array.from({ length: c.numHeads * 5 }, (_, i) => {
      const last = causalKeyBlocks(g, i % 5) - 1;
      return [last, ...Array.from({ length: last }, (_, kb) => kb).filter(() => random() < 0.33)];
    });
    const mask = blockMaskFromLists(g, (h, qb) => lists[h * 5 + qb]);
    const tiles = blockSparseTileConfig(ctx, c.headDim, 64, 64);
    expect(tiles.queryTile / 64).toBeGreaterThan(1);
    const { out } = await expectMatchesReference(input, mask);
    // One mask row per workgroup: the same arithmetic, so the same output.
    const single = { ...tiles, threads: 64 * tiles.lanesPerRow, queryTile: 64 };
    const alone = await expectMatchesReference(input, mask, single);
    expect(Array.from(alone.out)).toEqual(Array.from(out));
    const topInput = makeInput({ ...c, qStart: 32, seed: 9 });
    const { mask: topK } = blockSparse(topInput, { chunkSize: 16, topChunks: 4 });
    expect(topK.numQueryBlocks).toBeGreaterThan(tiles.queryTile / 16);
    await expectMatchesReference(topInput, topK);
  });

  it('works without subgroups (one invocation per row)', async () => {
    const c: Case = { ...d64, headDim: 32, numQueries: 40, qStart: 9, numHeads: 2, seed: 6 };
    const noSubgroups = { ...ctx, caps: { ...ctx.caps, subgroups: false } };
    const mask = slidingWindow(c, { window: 20, sinks: 2, blockQ: 16, blockK: 16 });
    await expectMatchesReference(
      makeInput(c),
      mask,
      blockSparseTileConfig(noSubgroups, c.headDim, 16, 16),
    );
  });
});
