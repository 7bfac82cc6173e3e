import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { timeDispatches } from '../../src/gpu/timer';
import { defaultScale } from '../../src/kernels/layout';
import { pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import {
  blockSparseTileConfig,
  maskRowsPerTile,
  packTileMask,
  type PackedTileMask,
} from '../../src/kernels/blockSparsePrefill';
import {
  planBlockSparseOnGpu,
  planBlockSparseOnHost,
  planVerticalSlashOnGpu,
  planVerticalSlashOnHost,
  type HostPlannerInput,
} from '../../src/kernels/planners';
import { blockSparse } from '../../src/methods/reference/blockSparse';
import { flexPrefill } from '../../src/methods/reference/flexPrefill';
import { BLOCK_PARTIAL, type BlockMask } from '../../src/methods/reference/masks';
import { verticalSlash } from '../../src/methods/reference/verticalSlash';
import { createStorageBuffer } from '../../src/gpu/buffers';
import { roundToFloat16 } from '../../src/gpu/f16';
import { randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

interface Case {
  numQueries: number;
  numHeads: number;
  numKvHeads: number;
  seed: number;
  /** Round q and k to multiples of 1/4: pooled scores are then exact in f32 and tie often. */
  quantized?: boolean;
  zeroQuery?: boolean;
  /** K stored as f16 pairs; the reference then sees the f16-rounded keys. */
  f16?: boolean;
  /** Estimation scratch in bytes: 1 runs one KV group per batch. */
  estimateScratchBytes?: number;
  /** Keys before the first query (a later prefill chunk); 0 when absent. */
  qStart?: number;
}

const headDim = 32;
const pageSize = 16;

function makeInput(c: Case): HostPlannerInput {
  const qStart = c.qStart ?? 0;
  const kvLen = qStart + c.numQueries;
  const round = (x: Float32Array) => (c.quantized ? x.map((v) => Math.round(v * 4) / 4) : x);
  const qCount = c.numQueries * c.numHeads * headDim;
  return {
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim,
    numQueries: c.numQueries,
    qStart,
    scale: defaultScale(headDim),
    kv: { pageSize, numKvHeads: c.numKvHeads, headDim, dtype: c.f16 ? 'f16' : 'f32' },
    q: c.zeroQuery ? new Float32Array(qCount) : round(randomFloats(qCount, c.seed)),
    k: round(randomFloats(kvLen * c.numKvHeads * headDim, c.seed + 1)),
    pageTable: shuffledPageTable(pagesFor(kvLen, pageSize), c.seed),
  };
}

function reference(input: HostPlannerInput) {
  const k = input.kv.dtype === 'f16' ? roundToFloat16(input.k) : input.k;
  return { ...input, k, v: k };
}

function expectSameMask(actual: BlockMask, expected: BlockMask): void {
  expect(actual.numQueryBlocks).toBe(expected.numQueryBlocks);
  expect(actual.numKeyBlocks).toBe(expected.numKeyBlocks);
  expect(Array.from(actual.rowStart)).toEqual(Array.from(expected.rowStart));
  expect(Array.from(actual.keyBlock)).toEqual(Array.from(expected.keyBlock));
  expect(Array.from(actual.blockKind)).toEqual(Array.from(expected.blockKind));
  expect(actual.rule.kind).toBe(expected.rule.kind);
  if (actual.rule.kind === 'vertical-slash' && expected.rule.kind === 'vertical-slash') {
    expect(Array.from(actual.rule.columns)).toEqual(Array.from(expected.rule.columns));
    expect(Array.from(actual.rule.diagonals)).toEqual(Array.from(expected.rule.diagonals));
  }
}

const describeCase = (c: Case) =>
  `L=${c.numQueries} heads=${c.numHeads}/${c.numKvHeads} seed=${c.seed}` +
  (c.qStart ? ` qStart=${c.qStart}` : '') +
  (c.quantized ? ' quantized' : '') +
  (c.zeroQuery ? ' q=0 (all tied)' : '') +
  (c.f16 ? ' f16 K' : '') +
  (c.estimateScratchBytes ? ' one group per batch' : '');

describe('Block-Sparse planner', () => {
  const cases: [Case, number][] = [
    [{ numQueries: 77, numHeads: 2, numKvHeads: 2, seed: 1, quantized: true }, 3],
    [{ numQueries: 150, numHeads: 4, numKvHeads: 1, seed: 2, quantized: true }, 4],
    [{ numQueries: 201, numHeads: 4, numKvHeads: 4, seed: 3, quantized: true }, 6],
    [{ numQueries: 133, numHeads: 8, numKvHeads: 2, seed: 4, quantized: true }, 5],
    [{ numQueries: 120, numHeads: 4, numKvHeads: 1, seed: 5 }, 4],
    [{ numQueries: 90, numHeads: 2, numKvHeads: 1, seed: 6, zeroQuery: true }, 4],
    [{ numQueries: 99, numHeads: 4, numKvHeads: 1, seed: 9, quantized: true, f16: true }, 4],
  ];
  it.each(cases.map(([c, top]) => [`${describeCase(c)} top=${top}`, c, top] as const))(
    'selects what the reference selects: %s',
    async (_, c, topChunks) => {
      const input = makeInput(c);
      const gpu = await planBlockSparseOnHost(ctx, input, { topChunks, blockSize: 16 });
      const ref = blockSparse(reference(input), { chunkSize: 16, topChunks });
      expect(gpu.blocks).toEqual(ref.blocks);
      expectSameMask(gpu.mask, ref.mask);
    },
  );

  it('carries ranks across 256-entry chunks (blockSize 2, 280 key blocks)', async () => {
    const input = makeInput({
      numQueries: 559,
      numHeads: 2,
      numKvHeads: 1,
      seed: 10,
      quantized: true,
    });
    const options = { topChunks: 260, blockSize: 2 };
    const gpu = await planBlockSparseOnHost(ctx, input, options);
    const ref = blockSparse(reference(input), { chunkSize: 2, topChunks: 260 });
    expect(gpu.blocks).toEqual(ref.blocks);
    expectSameMask(gpu.mask, ref.mask);
  });

  it('keeps a planted key block that every query block aligns with', async () => {
    const input = makeInput({
      numQueries: 140,
      numHeads: 4,
      numKvHeads: 2,
      seed: 7,
      quantized: true,
    });
    const planted = 2;
    for (let t = planted * 16; t < planted * 16 + 16; t++) {
      for (let kv = 0; kv < 2; kv++) input.k[(t * 2 + kv) * headDim] += 4;
    }
    for (let i = 0; i < input.numQueries; i++) {
      for (let h = 0; h < 4; h++) input.q[(i * 4 + h) * headDim] += 4;
    }
    const gpu = await planBlockSparseOnHost(ctx, input, { topChunks: 4, blockSize: 16 });
    const ref = blockSparse(reference(input), { chunkSize: 16, topChunks: 4 });
    expect(gpu.blocks).toEqual(ref.blocks);
    for (const head of gpu.blocks) {
      head.forEach((row, qb) => {
        if (qb >= planted) expect(row).toContain(planted);
      });
    }
  });

  it('records dispatches that timeDispatches can time (both planners)', async () => {
    const input = makeInput({ numQueries: 64, numHeads: 2, numKvHeads: 1, seed: 8 });
    const buffers = {
      q: createStorageBuffer(ctx.device, input.q),
      kPool: createStorageBuffer(ctx.device, new Float32Array(64 * headDim)),
      pageTable: createStorageBuffer(ctx.device, Uint32Array.from([0, 1, 2, 3])),
    };
    const plans = [
      planBlockSparseOnGpu(ctx, input, buffers, { topChunks: 3, blockSize: 16 }),
      planVerticalSlashOnGpu(ctx, input, buffers, { lastQ: 16, verticalSize: 8, slashSize: 8 }),
    ];
    for (const plan of plans) {
      const timing = await timeDispatches(ctx, plan.record, { warmup: 1, repeats: 2 });
      expect(timing.ms).toBeGreaterThan(0);
      plan.destroy();
    }
    for (const buffer of Object.values(buffers)) buffer.destroy();
  });
});

describe('Vertical-Slash planner', () => {
  const geometry = { sinkColumns: 4, localDiagonals: 8, blockQ: 32, blockK: 32 };
  const cases: Case[] = [
    { numQueries: 100, numHeads: 2, numKvHeads: 2, seed: 11 },
    { numQueries: 150, numHeads: 4, numKvHeads: 1, seed: 12 },
    { numQueries: 77, numHeads: 8, numKvHeads: 2, seed: 13 },
    { numQueries: 90, numHeads: 2, numKvHeads: 1, seed: 14, zeroQuery: true },
    { numQueries: 111, numHeads: 4, numKvHeads: 1, seed: 17, f16: true },
    // Rows longer than one 256-entry chunk of the selection, with and without ties.
    { numQueries: 333, numHeads: 2, numKvHeads: 1, seed: 18 },
    { numQueries: 333, numHeads: 2, numKvHeads: 2, seed: 19, zeroQuery: true },
    // The estimation in batches of one KV group (2 query heads each), against one batch above.
    { numQueries: 77, numHeads: 8, numKvHeads: 4, seed: 13, estimateScratchBytes: 1 },
  ];
  it.each(cases.map((c) => [describeCase(c), c] as const))(
    'selects what the reference selects: %s',
    async (_, c) => {
      const input = makeInput(c);
      const long = c.numQueries > 256;
      const sizes = { lastQ: long ? 16 : 40, verticalSize: long ? 270 : 10, slashSize: 12 };
      const tuning = { estimateScratchBytes: c.estimateScratchBytes };
      const gpu = await planVerticalSlashOnHost(ctx, input, { ...sizes, ...geometry, ...tuning });
      const ref = verticalSlash(reference(input), { ...sizes, ...geometry });
      expect(gpu.columns).toEqual(ref.columns);
      expect(gpu.diagonals).toEqual(ref.diagonals);
      expectSameMask(gpu.mask, ref.mask);
    },
  );

  it('uses the defaults (4 sinks, 64 local diagonals, 64x64 blocks)', async () => {
    const input = makeInput({ numQueries: 130, numHeads: 4, numKvHeads: 4, seed: 15 });
    const sizes = { lastQ: 50, verticalSize: 20, slashSize: 70 };
    const gpu = await planVerticalSlashOnHost(ctx, input, sizes);
    const ref = verticalSlash(reference(input), {
      ...sizes,
      sinkColumns: 4,
      localDiagonals: 64,
      blockQ: 64,
      blockK: 64,
    });
    expect(gpu.diagonals).toEqual(ref.diagonals);
    expectSameMask(gpu.mask, ref.mask);
  });

  it('keeps a planted heavy column', async () => {
    const input = makeInput({ numQueries: 120, numHeads: 4, numKvHeads: 1, seed: 16 });
    const planted = 37;
    input.k[planted * headDim] = 12;
    for (let i = 0; i < input.numQueries; i++) {
      for (let h = 0; h < 4; h++) input.q[(i * 4 + h) * headDim] = 2;
    }
    const sizes = { lastQ: 32, verticalSize: 6, slashSize: 10 };
    const gpu = await planVerticalSlashOnHost(ctx, input, { ...sizes, ...geometry });
    const ref = verticalSlash(reference(input), { ...sizes, ...geometry });
    expect(gpu.columns).toEqual(ref.columns);
    for (const columns of gpu.columns) expect(columns).toContain(planted);
    expectSameMask(gpu.mask, ref.mask);
  });
});

describe('FlexPrefill planner', () => {
  const geometry = { sinkColumns: 4, localDiagonals: 8, blockQ: 32, blockK: 32 };
  const cases: [Case, number, number][] = [
    [{ numQueries: 100, numHeads: 2, numKvHeads: 2, seed: 21 }, 0.3, 4],
    [{ numQueries: 150, numHeads: 4, numKvHeads: 1, seed: 22 }, 0.65, 16],
    [{ numQueries: 77, numHeads: 4, numKvHeads: 4, seed: 23 }, 0.5, 40],
    [{ numQueries: 120, numHeads: 6, numKvHeads: 2, seed: 25, estimateScratchBytes: 1 }, 0.5, 8],
  ];
  it.each(
    cases.map(
      ([c, alpha, minBudget]) =>
        [`${describeCase(c)} alpha=${alpha} minBudget=${minBudget}`, c, alpha, minBudget] as const,
    ),
  )('selects what the reference selects: %s', async (_, c, alpha, minBudget) => {
    const input = makeInput(c);
    const approximation = 48;
    const gpu = await planVerticalSlashOnHost(ctx, input, {
      mode: 'flexprefill',
      alpha,
      minBudget,
      approximation,
      ...geometry,
      estimateScratchBytes: c.estimateScratchBytes,
    });
    const ref = flexPrefill(reference(input), {
      alpha,
      minBudget,
      approximationSize: approximation,
      ...geometry,
    });
    expect(gpu.verticalSizes).toEqual(ref.verticalSizes);
    expect(gpu.slashSizes).toEqual(ref.slashSizes);
    expect(gpu.columns).toEqual(ref.columns);
    expect(gpu.diagonals).toEqual(ref.diagonals);
    expectSameMask(gpu.mask, ref.mask);
  });

  it('needs few columns when a planted column takes most of the mass', async () => {
    const input = makeInput({ numQueries: 110, numHeads: 2, numKvHeads: 1, seed: 24 });
    input.k[5 * headDim] = 20;
    for (let i = 0; i < input.numQueries; i++) {
      for (let h = 0; h < 2; h++) input.q[(i * 2 + h) * headDim] = 2;
    }
    const options = { alpha: 0.6, minBudget: 1, ...geometry };
    const gpu = await planVerticalSlashOnHost(ctx, input, {
      mode: 'flexprefill',
      approximation: 40,
      ...options,
    });
    const ref = flexPrefill(reference(input), { approximationSize: 40, ...options });
    expect(gpu.verticalSizes).toEqual(ref.verticalSizes);
    expect(gpu.verticalSizes.every((n) => n <= 2)).toBe(true);
    expect(gpu.columns).toEqual(ref.columns);
    expectSameMask(gpu.mask, ref.mask);
  });
});

/** Per (head, query tile): its union's entries (key block, then a state per mask row). */
function tileEntries(packed: PackedTileMask, rowsPerTile: number, tiles: number): number[][] {
  const stride = 1 + rowsPerTile;
  return Array.from({ length: tiles }, (_, t) => {
    const from = packed.entriesOffset + packed.words[2 * t] * stride;
    const to = packed.entriesOffset + packed.words[2 * t + 1] * stride;
    return Array.from(packed.words.subarray(from, to));
  });
}

/** The GPU packing of a plan holds what packTileMask makes of the plan's mask on the CPU. */
function expectPackingOf(gpu: PackedTileMask | undefined, mask: BlockMask): number {
  const config = blockSparseTileConfig(ctx, headDim, mask.blockQ, mask.blockK);
  const rowsPerTile = maskRowsPerTile(config, mask.blockQ);
  const cpu = packTileMask(mask, rowsPerTile);
  if (!gpu) throw new Error('the host planner did not return its packing');
  expect(gpu.numQueryTiles).toBe(cpu.numQueryTiles);
  expect(gpu.ruleStride).toBe(cpu.ruleStride);
  const tiles = mask.numHeads * cpu.numQueryTiles;
  expect(tileEntries(gpu, rowsPerTile, tiles)).toEqual(tileEntries(cpu, rowsPerTile, tiles));
  const rule = (p: PackedTileMask) => Array.from(p.words.subarray(p.ruleA, p.entriesOffset));
  expect(rule(gpu)).toEqual(rule(cpu));
  return rowsPerTile;
}

describe("Tile-mask packing on the GPU (the block-sparse kernel's mask, no readback)", () => {
  const blockCases: [Case, number, number][] = [
    [{ numQueries: 201, numHeads: 4, numKvHeads: 4, seed: 31, quantized: true }, 16, 4],
    [{ numQueries: 150, numHeads: 4, numKvHeads: 2, seed: 32, qStart: 64 }, 16, 5],
    [{ numQueries: 333, numHeads: 2, numKvHeads: 1, seed: 33 }, 64, 3],
    // More than one 256-block chunk of the packing's scan, rows longer than a chunk.
    [{ numQueries: 4200, numHeads: 2, numKvHeads: 1, seed: 34 }, 16, 270],
  ];
  it.each(
    blockCases.map(([c, b, top]) => [`Block-Sparse ${describeCase(c)} b=${b} top=${top}`, c, b, top] as const), // prettier-ignore
  )('%s', async (_, c, blockSize, topChunks) => {
    const gpu = await planBlockSparseOnHost(ctx, makeInput(c), { topChunks, blockSize }, true);
    const rowsPerTile = expectPackingOf(gpu.tiles, gpu.mask);
    if (blockSize === 16) expect(rowsPerTile).toBeGreaterThan(1);
  });

  const sliceCases: [Case, 'vertical-slash' | 'flexprefill'][] = [
    [{ numQueries: 300, numHeads: 4, numKvHeads: 2, seed: 35 }, 'vertical-slash'],
    [{ numQueries: 200, numHeads: 2, numKvHeads: 1, seed: 36, qStart: 100 }, 'vertical-slash'],
    [{ numQueries: 260, numHeads: 4, numKvHeads: 4, seed: 37 }, 'flexprefill'],
    // More than 256 key blocks: the grid read in two chunks.
    [{ numQueries: 16448, numHeads: 2, numKvHeads: 1, seed: 38 }, 'vertical-slash'],
  ];
  it.each(sliceCases.map(([c, kind]) => [`${kind} ${describeCase(c)}`, c, kind] as const))(
    '%s (64-token blocks)',
    async (_, c, kind) => {
      const options =
        kind === 'flexprefill'
          ? { mode: 'flexprefill' as const, alpha: 0.5, minBudget: 8, approximation: 48 }
          : { lastQ: 32, verticalSize: 20, slashSize: 40 };
      const gpu = await planVerticalSlashOnHost(ctx, makeInput(c), options, true);
      // Partial blocks reach the packing (full ones too in the FlexPrefill and qStart cases).
      expect(gpu.mask.blockKind).toContain(BLOCK_PARTIAL);
      expectPackingOf(gpu.tiles, gpu.mask);
    },
  );
});
