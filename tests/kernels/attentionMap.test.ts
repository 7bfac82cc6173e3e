import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { roundToFloat16 } from '../../src/gpu/f16';
import {
  attentionMapOnHost,
  blockSizeFor,
  keptSharePerHead,
  recallPerHead,
  type AttentionMapGrid,
  type HostAttentionMapInput,
} from '../../src/kernels/attentionMap';
import { attentionMapReference } from '../../src/kernels/attentionMap.reference';
import { defaultScale, type KvDtype } from '../../src/kernels/layout';
import { pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import {
  blockMaskFromLists,
  blockMaskFromMaskMod,
  denseMask,
  rowKeep,
  verticalSlashMask,
  type BlockMask,
  type MaskGeometry,
} from '../../src/methods/reference/masks';
import {
  cellAtPoint,
  cellDetails,
  cellKind,
  clampViewport,
  fitViewport,
  logLevel,
  LOG_DECADES,
  paintHead,
  zoomAt,
} from '../../src/ui/attentionMapRender';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

interface MapCase {
  numQueries: number;
  qStart: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  pageSize: number;
  dtype: KvDtype;
  blockSize: number;
  seed: number;
  zeroQuery?: boolean;
}

function makeInput(c: MapCase): HostAttentionMapInput {
  const kvLen = c.qStart + c.numQueries;
  const qCount = c.numQueries * c.numHeads * c.headDim;
  return {
    ...c,
    scale: defaultScale(c.headDim),
    kv: { pageSize: c.pageSize, numKvHeads: c.numKvHeads, headDim: c.headDim, dtype: c.dtype },
    q: c.zeroQuery ? new Float32Array(qCount) : randomFloats(qCount, c.seed, 2),
    k: randomFloats(kvLen * c.numKvHeads * c.headDim, c.seed + 1, 2),
    pageTable: shuffledPageTable(pagesFor(kvLen, c.pageSize), c.seed),
  };
}

/** The reference on the K the kernel reads (f16-rounded for f16 pools). */
function reference(input: HostAttentionMapInput, mask?: BlockMask) {
  const k = input.kv.dtype === 'f16' ? roundToFloat16(input.k) : input.k;
  return attentionMapReference({ ...input, k }, mask);
}

const base: MapCase = {
  numQueries: 13,
  qStart: 6,
  numHeads: 2,
  numKvHeads: 2,
  headDim: 16,
  pageSize: 4,
  dtype: 'f32',
  blockSize: 1,
  seed: 3,
};

const cases: MapCase[] = [
  base,
  { ...base, blockSize: 4, seed: 5 },
  { ...base, numHeads: 4, numKvHeads: 1, blockSize: 3, seed: 7 },
  { ...base, dtype: 'f16', blockSize: 2, seed: 9 },
  { ...base, numHeads: 8, numKvHeads: 2, dtype: 'f16', headDim: 32, blockSize: 5, seed: 11 },
  { ...base, qStart: 0, numQueries: 9, blockSize: 16, seed: 13 },
];

describe('attention map kernel', () => {
  for (const c of cases) {
    const groups = c.numHeads / c.numKvHeads;
    it(`matches the reference: heads ${c.numHeads}/${c.numKvHeads} (GQA ${groups}) ${c.dtype} block ${c.blockSize}`, async () => {
      const input = makeInput(c);
      const grid = await attentionMapOnHost(ctx, input);
      const expected = reference(input);
      const { error, magnitude } = maxAbsError(grid.mass, expected.mass);
      expect(magnitude).toBeGreaterThan(0);
      expect(error).toBeLessThan(1e-6);
      expect(grid.kept).toBeNull();
      // Each query block's row of cells holds the whole (mean) mass of its queries: 1.
      for (let row = 0; row < c.numHeads * grid.numQueryBlocks; row++) {
        const cells = grid.mass.subarray(row * grid.numKeyBlocks, (row + 1) * grid.numKeyBlocks);
        expect(cells.reduce((sum, value) => sum + value, 0)).toBeCloseTo(1, 5);
      }
    });
  }

  const geometry = (c: MapCase, blockQ: number, blockK: number): MaskGeometry => ({
    numHeads: c.numHeads,
    numQueries: c.numQueries,
    qStart: c.qStart,
    blockQ,
    blockK,
  });
  const maskCases: { name: string; c: MapCase; mask: (c: MapCase) => BlockMask }[] = [
    {
      name: 'bitset (mask_mod), GQA 4, f16',
      c: { ...base, numHeads: 4, numKvHeads: 1, dtype: 'f16', blockSize: 2 },
      mask: (c) =>
        blockMaskFromMaskMod(geometry(c, 4, 4), (_b, h, q, kv) => (q * 7 + kv * 3 + h) % 5 < 2),
    },
    {
      name: 'vertical-slash, GQA 1',
      c: { ...base, blockSize: 3 },
      mask: (c) =>
        verticalSlashMask(
          geometry(c, 4, 8),
          (h) => [0, 2 + h],
          (h) => [0, 1, 3 + h],
        ),
    },
    {
      name: 'block lists, token level, f16',
      c: { ...base, dtype: 'f16', blockSize: 1 },
      mask: (c) => blockMaskFromLists(geometry(c, 4, 4), (h, qb) => (h === 0 ? [0] : [0, qb + 1])),
    },
  ];
  for (const { name, c, mask: makeMask } of maskCases) {
    it(`kept mass and recall match the reference: ${name}`, async () => {
      const input = makeInput(c);
      const mask = makeMask(c);
      const grid = await attentionMapOnHost(ctx, input, mask);
      const expected = reference(input, mask);
      expect(maxAbsError(grid.mass, expected.mass).error).toBeLessThan(1e-6);
      const kept = maxAbsError(grid.kept!, expected.kept!);
      expect(kept.magnitude).toBeGreaterThan(0);
      expect(kept.error).toBeLessThan(1e-6);
      const recall = recallPerHead(grid);
      expect(maxAbsError(recall, expected.recall!).error).toBeLessThan(1e-6);
      for (const r of recall) {
        expect(r).toBeGreaterThan(0);
        expect(r).toBeLessThan(1);
      }
    });
  }

  it('recall has the known answer with equal scores: a sink-only mask keeps 1 / (keys) per row', async () => {
    // q = 0 makes every score equal: row i spreads its mass evenly over its qStart + i + 1 keys.
    const c: MapCase = { ...base, zeroQuery: true, blockSize: 4 };
    const input = makeInput(c);
    const sinkOnly = blockMaskFromMaskMod(geometry(c, 4, 4), (_b, h, _q, kv) =>
      h === 0 ? kv === 0 : kv <= 1,
    );
    const grid = await attentionMapOnHost(ctx, input, sinkOnly);
    const recall = recallPerHead(grid);
    let oneKey = 0;
    for (let i = 0; i < c.numQueries; i++) oneKey += 1 / (c.qStart + i + 1);
    expect(recall[0]).toBeCloseTo(oneKey / c.numQueries, 6);
    expect(recall[1]).toBeCloseTo((2 * oneKey) / c.numQueries, 6);

    const dense = await attentionMapOnHost(ctx, input, denseMask(geometry(c, 4, 4)));
    for (const r of recallPerHead(dense)) expect(r).toBeCloseTo(1, 6);
  });

  it('rejects a mask for another query range, saying what to change', async () => {
    const input = makeInput(base);
    const other = denseMask({ ...geometry(base, 4, 4), qStart: base.qStart + 1 });
    await expect(attentionMapOnHost(ctx, input, other)).rejects.toThrow(
      /kept mask covers .* build the mask for the same heads and query range/,
    );
    await expect(attentionMapOnHost(ctx, { ...input, blockSize: 0 })).rejects.toThrow(
      /block size must be a positive integer/,
    );
  });
});

describe('default block size', () => {
  it('is token level while the grid fits, then the smallest power of two that fits', () => {
    expect(blockSizeFor(256, 32)).toBe(1);
    expect(blockSizeFor(2048, 32)).toBe(4);
    expect(blockSizeFor(8192, 32)).toBe(16);
    expect(blockSizeFor(8192, 32, 128 * 128 * 32)).toBe(64);
    expect(blockSizeFor(100, 4, 30 * 30 * 4)).toBe(4);
  });
});

describe('kept share per head', () => {
  it('counts the kept causal elements per head as rowKeep does', () => {
    const g: MaskGeometry = { numHeads: 3, numQueries: 11, qStart: 5, blockQ: 4, blockK: 4 };
    const masks = [
      blockMaskFromMaskMod(g, (_b, h, q, kv) => (q + kv * (h + 2)) % 3 === 0),
      verticalSlashMask(
        g,
        (h) => [h, 7],
        (h) => [0, h + 1],
      ),
      blockMaskFromLists(g, (h, qb) => (h === 1 ? [qb] : [0])),
    ];
    for (const mask of masks) {
      const share = keptSharePerHead(mask);
      const keep = new Uint8Array(mask.numKeys);
      for (let h = 0; h < g.numHeads; h++) {
        let kept = 0;
        let causal = 0;
        for (let i = 0; i < g.numQueries; i++) {
          rowKeep(mask, h, i, keep);
          kept += keep.reduce((sum, bit) => sum + bit, 0);
          causal += g.qStart + i + 1;
        }
        expect(share[h]).toBeCloseTo(kept / causal, 12);
      }
    }
  });
});

describe('attention map view helpers', () => {
  it('classifies cells by the share of their mass the mask kept', () => {
    expect(cellKind(0.2, null)).toBe('kept');
    expect(cellKind(0.2, 0.2)).toBe('kept');
    expect(cellKind(0.2, 0.1)).toBe('partial');
    expect(cellKind(0.2, 0)).toBe('dropped');
    expect(cellKind(0, 0)).toBe('empty');
  });

  it('places mass on a log scale of LOG_DECADES decades below the head maximum', () => {
    expect(logLevel(0.5, 0.5)).toBe(1);
    expect(logLevel(0.5 * 10 ** -LOG_DECADES, 0.5)).toBeCloseTo(0, 12);
    expect(logLevel(0.05, 0.5)).toBeCloseTo(1 - 1 / LOG_DECADES, 12);
    expect(logLevel(1e-30, 0.5)).toBe(0);
  });

  it('zooms about the cursor and finds the cell under a point', () => {
    const fitted = fitViewport(128, 64, 512, 512);
    expect(fitted).toEqual({ scale: 4, x: 0, y: 128 });
    const before = cellAtPoint(fitted, 301, 203, 128, 64);
    const zoomed = zoomAt(fitted, 3, 301, 203, 1);
    expect(zoomed.scale).toBe(12);
    expect(cellAtPoint(zoomed, 301, 203, 128, 64)).toEqual(before);
    expect(cellAtPoint(fitted, 10, 10, 128, 64)).toBeNull();
    const lost = clampViewport({ scale: 4, x: -5000, y: 5000 }, 128, 64, 512, 512);
    expect(lost.x).toBe(512 * 0.25 - 128 * 4);
    expect(lost.y).toBe(512 * 0.75);
  });

  it('names the tokens of a block cell and paints non-causal cells transparent', () => {
    const grid: AttentionMapGrid = {
      numHeads: 1,
      numQueries: 8,
      qStart: 0,
      blockSize: 4,
      numQueryBlocks: 2,
      numKeyBlocks: 2,
      mass: Float32Array.of(1, 0, 0.25, 0.75),
      kept: Float32Array.of(1, 0, 0, 0.75),
    };
    const tokens = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const details = cellDetails(grid, tokens, 0, 1, 0);
    expect(details.query).toBe('4\u20137 \u201cefgh\u201d');
    expect(details.key).toBe('0\u20133 \u201cabcd\u201d');
    expect(details).toMatchObject({ weight: 0.25, kept: 0, causal: true });
    expect(cellDetails(grid, tokens, 0, 0, 1).causal).toBe(false);
    const pixels = new Uint8ClampedArray(4 * 4);
    paintHead(grid, 0, true, pixels);
    expect(Array.from(pixels.subarray(4, 8))).toEqual([0, 0, 0, 0]);
    const dropped = pixels.subarray(8, 12);
    expect(dropped[0]).toBeGreaterThan(dropped[1]); // the lost ramp is red
    expect(pixels[3]).toBe(255);
  });
});
