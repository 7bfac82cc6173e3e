import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { acquireNodeGpuContext } from '../../src/gpu/node';
import { timeDispatches } from '../../src/gpu/timer';
import { defaultScale } from '../../src/kernels/layout';
import { pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import {
  planBlockSparseOnGpu,
  planBlockSparseOnHost,
  planVerticalSlashOnGpu,
  planVerticalSlashOnHost,
  type HostPlannerInput,
} from '../../src/kernels/planners';
import { blockSparse } from '../../src/methods/reference/blockSparse';
import { flexPrefill } from '../../src/methods/reference/flexPrefill';
import type { BlockMask } from '../../src/methods/reference/masks';
import { verticalSlash } from '../../src/methods/reference/verticalSlash';
import { createStorageBuffer } from '../../src/gpu/buffers';
import { roundToFloat16 } from '../../src/gpu/f16';
import { randomFloats } from '../support/random';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await acquireNodeGpuContext();
});
afterAll(() => ctx.device.destroy());

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
}

const headDim = 32;
const pageSize = 16;

function makeInput(c: Case): HostPlannerInput {
  const kvLen = c.numQueries;
  const round = (x: Float32Array) => (c.quantized ? x.map((v) => Math.round(v * 4) / 4) : x);
  const qCount = c.numQueries * c.numHeads * headDim;
  return {
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim,
    numQueries: c.numQueries,
    qStart: 0,
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
