import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { acquireNodeGpuContext } from '../../src/gpu/node';
import { defaultScale } from '../../src/kernels/layout';
import { METHODS } from '../../src/methods/registry';
import {
  unitSparsity,
  type MethodGpuInput,
  type MethodParams,
  type MethodShape,
  type Phase,
} from '../../src/methods/types';
import { maxAbsError, randomFloats } from '../support/random';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await acquireNodeGpuContext();
});
afterAll(() => ctx.device.destroy());

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
  sliding_window: { window: 20, block: 16 },
  quest: { tokenBudget: 48 },
  user_pattern: {
    source: '(b, h, q, kv) => (q - kv < 24 && (q + kv + h) % 3 !== 1) || kv < 2',
    block: 16,
  },
};

/** One small case per phase of each method with a GPU path (decode only where prefill is absent). */
const cases = METHODS.filter((m) => m.run).flatMap((m) =>
  m.phases
    .filter((phase) => m.name === 'dense' || phase === m.phases[0])
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
      'sliding_window',
      'quest',
      'user_pattern',
    ]);
    for (const m of METHODS) if (!m.run) expect(m.runUnavailable).toBeTruthy();
  });

  it.each(cases)('%s (%s)', async (name, phase, m) => {
    // FlexPrefill needs peaked attention to stop short of every key block on so short a prompt.
    const input = inputFor(shapes[phase], 7, name === 'flexprefill' ? 8 : 2);
    const params = SPARSE_PARAMS[name];
    const reference = m.reference(input, params);
    const { out, stats } = await m.run!(ctx, input, params);
    const check = maxAbsError(out, reference.output);
    expect(check.magnitude).toBeGreaterThan(0);
    expect(check.error).toBeLessThanOrEqual(1e-4 * check.magnitude);
    expect(stats.unit).toBe(reference.units.unit);
    expect(stats.blocksOrPagesTouched).toBe(reference.units.touched);
    expect(stats.total).toBe(reference.units.total);
    expect(stats.measuredSparsity).toBe(unitSparsity(reference.units));
    if (name !== 'dense') {
      expect(stats.countedBy).toBe('kernel');
      expect(reference.measuredSparsity).toBeGreaterThan(0);
      expect(stats.measuredSparsity).toBeGreaterThan(0);
    }
    if (m.planner === 'cpu') expect(stats.plannerMs).toBeGreaterThanOrEqual(0);
  });
});
