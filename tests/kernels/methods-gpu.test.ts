import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { blasstPrefillTileConfig } from '../../src/kernels/blasst';
import { defaultScale } from '../../src/kernels/layout';
import { blasst, type BlasstOrder } from '../../src/methods/reference/blasst';
import { measuredSparsity } from '../../src/methods/reference/masks';
import { METHODS } from '../../src/methods/registry';
import {
  blockUnits,
  numberParam,
  resolveParams,
  stringParam,
  unitSparsity,
  type MethodGpuInput,
  type MethodParams,
  type MethodReference,
  type MethodShape,
  type Phase,
  type SparseMethod,
} from '../../src/methods/types';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

const heads = { numHeads: 4, numKvHeads: 2, headDim: 32 };
const shapes: Record<Phase, MethodShape> = {
  prefill: { ...heads, numQueries: 80, qStart: 48 },
  decode: { ...heads, numQueries: 1, qStart: 236 },
};

function inputFor(shape: MethodShape, seed: number, qAmplitude = 2): MethodGpuInput {
  const keys = shape.qStart + shape.numQueries;
  return {
    ...shape,
    scale: defaultScale(shape.headDim),
    q: randomFloats(shape.numQueries * shape.numHeads * shape.headDim, seed, qAmplitude),
    k: randomFloats(keys * shape.numKvHeads * shape.headDim, seed + 1, 2),
    v: randomFloats(keys * shape.numKvHeads * shape.headDim, seed + 2),
  };
}

/** Params that drop something on these small shapes. */
const SPARSE_PARAMS: Record<string, Partial<MethodParams>> = {
  dense: {},
  vertical_slash: { verticalSize: 6, lastQ: 32, sinkColumns: 2, localDiagonals: 4, block: 16 },
  flexprefill: {
    alpha: 0.2,
    minBudget: 4,
    approximationSize: 32,
    sinkColumns: 2,
    localDiagonals: 4,
    block: 16,
  },
  block_sparse: { topChunks: 3 },
  blasst: { lambda: 0.05, order: 'natural' },
  sliding_window: { window: 20, block: 16 },
  quest: { tokenBudget: 48 },
  snapkv: { capacity: 40, window: 1, poolKernel: 7, localWindow: 16, prefixTokens: 4 },
  ada_snapkv: { capacity: 40, window: 1, poolKernel: 7, localWindow: 16, prefixTokens: 4 },
  user_pattern: {
    source: '(b, h, q, kv) => (q - kv < 24 && (q + kv + h) % 3 !== 1) || kv < 2',
    block: 16,
  },
};

/**
 * BLASST prefill input: keys 32 .. 63 point away from every query (dimension 0), so their key
 * block scores low for all rows of a query tile and is skipped.
 */
function blasstInput(shape: MethodShape, seed: number): MethodGpuInput {
  const input = inputFor(shape, seed, 1);
  const { numHeads, numKvHeads, headDim } = shape;
  for (let r = 0; r < shape.numQueries * numHeads; r++) input.q[r * headDim] += 4;
  for (let t = 32; t < 64; t++) {
    for (let g = 0; g < numKvHeads; g++) input.k[(t * numKvHeads + g) * headDim] = -8;
  }
  return input;
}

/**
 * BLASST prefill's reference at the kernel's blocks: its query and key tiles (blasstPrefillTileConfig),
 * not the method's `block` param.
 */
function blasstKernelReference(
  m: SparseMethod,
  input: MethodGpuInput,
  params: Partial<MethodParams>,
): MethodReference {
  const resolved = resolveParams(m.params, params);
  const tiles = blasstPrefillTileConfig(ctx, input.headDim);
  const result = blasst(input, {
    lambda: numberParam(resolved, 'lambda'),
    order: stringParam(resolved, 'order') as BlasstOrder,
    blockQ: tiles.queryTile,
    blockK: tiles.keyTile,
  });
  return {
    ...m.reference(input, params),
    output: result.out,
    mask: result.mask,
    measuredSparsity: measuredSparsity(result.mask),
    units: blockUnits(result.mask),
  };
}

/**
 * One small case per phase of each method with a GPU path (decode only where prefill is absent, or
 * where decode runs another kernel: dense, sliding window, user patterns).
 */
const decodesApart = ['dense', 'sliding_window', 'user_pattern'];
const cases = METHODS.filter((m) => m.run).flatMap((m) =>
  m.phases
    .filter((phase) => decodesApart.includes(m.name) || phase === m.phases[0])
    .map((phase) => [m.name, phase, m] as const),
);

describe('methods on the GPU match their CPU references', () => {
  it('covers every method with a GPU path', () => {
    expect(cases.map(([name]) => name)).toEqual([
      'dense',
      'dense',
      'vertical_slash',
      'flexprefill',
      'block_sparse',
      'blasst',
      'sliding_window',
      'sliding_window',
      'quest',
      'snapkv',
      'ada_snapkv',
      'user_pattern',
      'user_pattern',
    ]);
    for (const m of METHODS) if (!m.run) expect(m.runUnavailable).toBeTruthy();
  });

  it.each(cases)('%s (%s)', async (name, phase, m) => {
    // FlexPrefill needs peaked attention to stop short of every key block on so short a prompt.
    const input =
      name === 'blasst'
        ? blasstInput(shapes[phase], 7)
        : inputFor(shapes[phase], 7, name === 'flexprefill' ? 8 : 2);
    const params = SPARSE_PARAMS[name];
    const reference =
      name === 'blasst' ? blasstKernelReference(m, input, params) : m.reference(input, params);
    const { out, stats } = await m.run!(ctx, input, params);
    const check = maxAbsError(out, reference.output);
    expect(check.magnitude).toBeGreaterThan(0);
    expect(check.error).toBeLessThanOrEqual(1e-4 * check.magnitude);
    expect(stats.unit).toBe(reference.units.unit);
    expect(stats.blocksOrPagesTouched).toBe(reference.units.touched);
    expect(stats.total).toBe(reference.units.total);
    expect(stats.measuredSparsity).toBe(unitSparsity(reference.units));
    // Position-only decode reads what its shape (or mask) says; the other sparse kernels count.
    if ((name === 'sliding_window' || name === 'user_pattern') && phase === 'decode') {
      expect(stats.countedBy).toBe('shape');
      expect(stats.measuredSparsity).toBeGreaterThan(0);
    } else if (name !== 'dense') {
      expect(stats.countedBy).toBe('kernel');
      expect(reference.measuredSparsity).toBeGreaterThan(0);
      expect(stats.measuredSparsity).toBeGreaterThan(0);
    }
    if (m.planner === 'cpu') expect(stats.plannerMs).toBeGreaterThanOrEqual(0);
  });
});

describe('BLASST decode on the GPU', () => {
  it('group size 1: equals the method reference, blocks counted by the kernel', async () => {
    // One query head per KV head: the kernel's per KV head decision is the reference's per head.
    const shape: MethodShape = { numHeads: 2, numKvHeads: 2, headDim: 32, numQueries: 1, qStart: 236 }; // prettier-ignore
    const input = inputFor(shape, 11, 1);
    // Only the most recent keys score high: visited first, they let the older blocks go.
    for (let h = 0; h < shape.numHeads; h++) input.q[h * shape.headDim] += 4;
    for (let t = 200; t <= shape.qStart; t++) {
      for (let g = 0; g < shape.numKvHeads; g++)
        input.k[(t * shape.numKvHeads + g) * shape.headDim] = 6;
    }
    const m = METHODS.find((x) => x.name === 'blasst')!;
    const params = { lambda: 0.05, order: 'sink-recent-first', block: 64 };
    const reference = m.reference(input, params);
    const { out, stats } = await m.run!(ctx, input, params);
    const check = maxAbsError(out, reference.output);
    expect(check.magnitude).toBeGreaterThan(0);
    expect(check.error).toBeLessThanOrEqual(1e-4 * check.magnitude);
    expect(stats.unit).toBe('block');
    expect(stats.countedBy).toBe('kernel');
    expect(stats.blocksOrPagesTouched).toBe(reference.units.touched);
    expect(stats.total).toBe(reference.units.total);
    expect(stats.measuredSparsity).toBe(unitSparsity(reference.units));
    expect(stats.measuredSparsity).toBeGreaterThan(0);
  });
});
