/**
 * The UI's pure parts: the shared-link codec and its validation, the run configuration's checks,
 * the sweep plots' numbers (means, standard errors, paired ratios) and the divergence finder.
 */
import { describe, expect, it } from 'vitest';
import type { SampleResult, SweepPhase } from '../../src/engine/sweepTypes';
import { DEFAULT_MASK_MOD } from '../../src/methods/userPattern';
import { firstDivergence } from '../../src/ui/playgroundStore';
import {
  checkSweepConfig,
  defaultRunConfig,
  defaultSweepConfig,
  NOMINAL_DIMS,
  paramsAtSparsity,
  parseSparsities,
  sweepProblem,
} from '../../src/ui/runConfig';
import { decodeShareHash, encodeShareHash, type SharedState } from '../../src/ui/shareState';
import {
  accuracyVsCost,
  accuracyVsSparsity,
  lengthComparisons,
  speedupVsSparsity,
} from '../../src/ui/sweepPlotData';

function sharedState(): SharedState {
  return {
    v: 1,
    model: 'HuggingFaceTB/SmolLM2-135M',
    run: { ...defaultRunConfig(), customText: 'Ünïcode text ✓', customQuestion: 'Why?' },
    sweep: defaultSweepConfig(),
    pattern: {
      method: 'user_pattern',
      seqLen: 512,
      sparsity: 0.6,
      params: { source: DEFAULT_MASK_MOD, window: 100, sinks: 4, block: 16 },
      userSource: DEFAULT_MASK_MOD,
    },
  };
}

/** A hash carrying an arbitrary object (what a hand-edited link could hold). */
function hashOf(value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  const base64 = btoa(String.fromCharCode(...bytes));
  return `#config=${base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
}

describe('shared links', () => {
  it('round-trips the whole configuration, text in any script included', () => {
    const state = sharedState();
    const hash = encodeShareHash(state);
    expect(hash).toMatch(/^#config=[A-Za-z0-9_-]+$/);
    expect(decodeShareHash(hash)).toEqual(state);
  });

  it('reads no configuration from a hash without one', () => {
    expect(decodeShareHash('')).toBeNull();
    expect(decodeShareHash('#section-2')).toBeNull();
  });

  it('names what is wrong in a link that cannot be used', () => {
    expect(() => decodeShareHash('#config=%%%')).toThrow(/damaged/);
    const state = sharedState();
    expect(() => decodeShareHash(hashOf({ ...state, v: 7 }))).toThrow(/version 7/);
    expect(() =>
      decodeShareHash(hashOf({ ...state, run: { ...state.run, task: 'nope' } })),
    ).toThrow(/run\.task: unknown task "nope" \(known: ruler_niah/);
    const badParam = {
      ...state.run,
      prefill: { method: 'block_sparse', params: { chunkSize: 3 } },
    };
    expect(() => decodeShareHash(hashOf({ ...state, run: badParam }))).toThrow(
      /run\.prefill\.params: parameter chunkSize = 3/,
    );
    const decodeOnly = { ...state.run, decode: { method: 'block_sparse', params: {} } };
    expect(() => decodeShareHash(hashOf({ ...state, run: decodeOnly }))).toThrow(
      /run\.decode\.method: "block_sparse" is not a decode method/,
    );
    const sweepDense = { ...state.sweep, prefillMethods: ['dense'] };
    expect(() => decodeShareHash(hashOf({ ...state, sweep: sweepDense }))).toThrow(
      /dense is the baseline/,
    );
  });
});

describe('run and sweep configuration', () => {
  it('parses a sparsity list, sorted and without repeats, and names a bad entry', () => {
    expect(parseSparsities('0.5, 0.1 0.5,0')).toEqual([0, 0.1, 0.5]);
    expect(() => parseSparsities('0.5, 2')).toThrow(/"2" is not a sparsity from 0 to 0.95/);
  });

  it('says why a sweep cannot start', () => {
    const config = defaultSweepConfig();
    expect(sweepProblem(config)).toBeNull();
    expect(sweepProblem({ ...config, tasks: [] })).toMatch(/task/);
    expect(sweepProblem({ ...config, prefillMethods: [], decodeMethods: [] })).toMatch(
      /sparse method/,
    );
    expect(checkSweepConfig(config)).toEqual(config);
  });

  it('moves the sparsity knob with the target and keeps a mask_mod source', () => {
    const low = paramsAtSparsity('prefill', 'sliding_window', 0.2, 2048, NOMINAL_DIMS);
    const high = paramsAtSparsity('prefill', 'sliding_window', 0.9, 2048, NOMINAL_DIMS);
    expect(Number(high.window)).toBeLessThan(Number(low.window));
    const source = 'function mask_mod(b, h, q, k) { return q - k < 3; }';
    const user = paramsAtSparsity('prefill', 'user_pattern', 0.5, 1024, NOMINAL_DIMS, { source });
    expect(user.source).toBe(source);
  });

  it('finds the first divergent token', () => {
    expect(firstDivergence([1, 2, 3], [1, 2, 3])).toBeNull();
    expect(firstDivergence([1, 2, 3], [1, 5, 3])).toBe(1);
    expect(firstDivergence([1, 2, 3], [1, 2])).toBe(2);
  });
});

function result(
  phase: SweepPhase,
  method: string,
  sparsity: number,
  seed: number,
  values: {
    score: number;
    prefillMs?: number;
    decodeMs?: number;
    flops?: number;
    bytes?: number;
    /** The kernels' count in the result's own phase. */
    measured?: number;
  },
  status: 'ok' | 'error' = 'ok',
  length = 2048,
): SampleResult {
  const pointId = phase === 'baseline' ? 'dense' : `${phase}:${method}@${sparsity}`;
  const sampleId = `ruler_niah/${length}/${seed}`;
  const empty = { sparsity: 0, touched: 0, total: 0, layers: [], plannerMs: 0 };
  return {
    key: `${pointId}|${sampleId}`,
    pointId,
    phase,
    method,
    sparsity,
    sampleId,
    task: 'ruler_niah',
    length,
    seed,
    status,
    attention: { prefill: { name: 'dense', params: {} }, decode: { name: 'dense', params: {} } },
    promptTokens: 2000,
    generatedTokens: 4,
    output: '',
    score: values.score,
    vsDense: null,
    measured: {
      prefill: { ...empty, sparsity: phase === 'prefill' ? (values.measured ?? 0) : 0 },
      decode: { ...empty, sparsity: phase === 'decode' ? (values.measured ?? 0) : 0 },
    },
    recall: null,
    cost: {
      prefillFlops: values.flops ?? 100,
      decodeBytesPerToken: values.bytes ?? 10,
      prefillSparsity: 0,
      decodeSparsity: 0,
    },
    timings: {
      source: 'timestamp-query',
      prefillMs: values.prefillMs ?? 10,
      prefillTokens: 2000,
      decodeMs: values.decodeMs ?? 8,
      decodeTokens: 4,
    },
    wallMs: 1,
  };
}

describe('sweep plot numbers', () => {
  const dense = [0, 1, 2].map((seed) => result('baseline', 'dense', 0, seed, { score: 1 }));
  const sparse = [
    result('prefill', 'block_sparse', 0.5, 0, { score: 1, prefillMs: 5, flops: 50 }),
    result('prefill', 'block_sparse', 0.5, 1, { score: 0.5, prefillMs: 2.5, flops: 40 }),
    // A failed run of seed 2, then its retry: the latest result per key counts.
    result('prefill', 'block_sparse', 0.5, 2, { score: 0 }, 'error'),
    result('prefill', 'block_sparse', 0.5, 2, { score: 0, prefillMs: 10, flops: 60 }),
    result('decode', 'quest', 0.9, 0, { score: 1, decodeMs: 2, bytes: 2 }),
  ];
  const all = [...dense, ...sparse];
  const filter = { task: null, length: null };

  it('averages scores per method and sparsity with their standard error', () => {
    const { dense: reference, series } = accuracyVsSparsity(all, filter);
    expect(reference).toMatchObject({ n: 3, mean: 1 });
    const blockSparse = series.find((s) => s.key === 'prefill:block_sparse')!;
    expect(blockSparse.points).toHaveLength(1);
    const { y } = blockSparse.points[0];
    expect(y.n).toBe(3);
    expect(y.mean).toBeCloseTo(0.5, 12);
    // Scores 1, 0.5, 0: sample std 0.5, SE 0.5 / sqrt(3).
    expect(y.se).toBeCloseTo(0.5 / Math.sqrt(3), 12);
  });

  it('pairs costs and times with dense on the same sample', () => {
    const cost = accuracyVsCost(all, filter).series.find((s) => s.key === 'prefill:block_sparse')!;
    expect(cost.points[0].x).toBeCloseTo((0.5 + 0.4 + 0.6) / 3, 12);
    const quest = accuracyVsCost(all, filter).series.find((s) => s.key === 'decode:quest')!;
    expect(quest.points[0].x).toBeCloseTo(0.2, 12);
    const speed = speedupVsSparsity(all, filter).series;
    const bs = speed.find((s) => s.key === 'prefill:block_sparse')!.points[0].y;
    expect(bs.mean).toBeCloseTo((2 + 4 + 1) / 3, 12);
    // Decode per token: dense 8 ms / 4 tokens, Quest 2 ms / 4 tokens.
    expect(speed.find((s) => s.key === 'decode:quest')!.points[0].y.mean).toBeCloseTo(4, 12);
  });

  it('filters by task and length', () => {
    const none = accuracyVsSparsity(all, { task: 'ruler_vt', length: null });
    expect(none).toEqual({ dense: null, series: [] });
    expect(accuracyVsSparsity(all, { task: null, length: 2048 }).series).toHaveLength(2);
  });
});

describe('sweep plots: the sparsity axis', () => {
  // An adaptive method asked for 0.5 and 0.9 that counted 0.3 and 0.2 (the data decides).
  const results = [
    result('baseline', 'dense', 0, 0, { score: 1 }),
    result('prefill', 'blasst', 0.5, 0, { score: 0.5, measured: 0.3 }),
    result('prefill', 'blasst', 0.9, 0, { score: 0.25, measured: 0.2 }),
  ];
  const filter = { task: null, length: null };

  it("puts the kernels' count on x by default, each series in ascending x", () => {
    const [series] = accuracyVsSparsity(results, filter).series;
    expect(series.points.map((p) => [p.x, p.targetSparsity, p.y.mean])).toEqual([
      [0.2, 0.9, 0.25],
      [0.3, 0.5, 0.5],
    ]);
    const [speed] = speedupVsSparsity(results, filter).series;
    expect(speed.points.map((p) => p.x)).toEqual([0.2, 0.3]);
  });

  it('puts the target on x on request', () => {
    const [series] = accuracyVsSparsity(results, filter, 'target').series;
    expect(series.points.map((p) => [p.x, p.measuredSparsity])).toEqual([
      [0.5, 0.3],
      [0.9, 0.2],
    ]);
    expect(speedupVsSparsity(results, filter, 'target').series[0].points.map((p) => p.x)).toEqual([
      0.5, 0.9,
    ]);
  });
});

describe('sweep lengths table (finding 1)', () => {
  const at = (length: number, phase: SweepPhase, method: string, scores: number[]) =>
    scores.map((score, seed) =>
      result(phase, method, phase === 'baseline' ? 0 : 0.9, seed, { score }, 'ok', length),
    );
  const results = [
    ...at(2048, 'baseline', 'dense', [1, 1, 1]),
    ...at(4096, 'baseline', 'dense', [1, 1, 1]),
    ...at(2048, 'prefill', 'block_sparse', [0, 0, 0]),
    ...at(4096, 'prefill', 'block_sparse', [1, 1, 0]),
  ];

  it('compares the shorter length with the longer one on the paired dense samples', () => {
    const [row] = lengthComparisons(results, null);
    expect([row.shorter, row.longer, row.method]).toEqual([2048, 4096, 'block_sparse']);
    expect(row.shorterDelta).toBe(-1);
    expect(row.longerDelta).toBeCloseTo(-1 / 3, 12);
    // Deltas 0, 0, -1 at 4096: SE sqrt(1/3) / sqrt(3) = 1/3 < the difference 2/3.
    expect(row.se).toBeCloseTo(1 / 3, 12);
    expect(row.verdict).toBe('longer');
    expect(row.denseDiffers).toBe(false);
  });

  it('shows nothing for one length, or for a task the sweep did not run', () => {
    expect(
      lengthComparisons(
        results.filter((r) => r.length === 4096),
        null,
      ),
    ).toEqual([]);
    expect(lengthComparisons(results, 'ruler_vt')).toEqual([]);
  });
});
