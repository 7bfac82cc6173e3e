import { describe, expect, it } from 'vitest';
import { compareLengths, tallyVerdicts } from '../../src/engine/lengthTolerance';
import { aggregate } from '../../src/engine/metrics';
import type { PointAggregate, SweepPhase } from '../../src/engine/sweepTypes';

const none = aggregate([0]);

/** A point's aggregate with the given per-sample (method - dense) differences and sparsity. */
function point(
  phase: SweepPhase,
  method: string,
  length: number,
  deltas: number[],
  measured: number,
  task = 'ruler_niah',
): PointAggregate {
  const sparsity = aggregate(deltas.map(() => measured));
  return {
    pointId: `${phase}:${method}@0.9`,
    phase,
    method,
    sparsity: 0.9,
    task,
    length,
    n: deltas.length,
    errors: 0,
    score: aggregate(deltas.map((d) => 1 + d)),
    vsDense: {
      n: deltas.length,
      absoluteError: -aggregate(deltas).mean,
      relativeError: -aggregate(deltas).mean,
      relativeErrorSe: aggregate(deltas).se,
      pairedDifference: aggregate(deltas),
      kl: none,
      top1Agreement: none,
    },
    measuredSparsity: {
      prefill: phase === 'prefill' ? sparsity : none,
      decode: phase === 'decode' ? sparsity : none,
    },
    recall: null,
    recallKind: null,
    recallQueries: 0,
    prefillFlops: none,
    decodeBytesPerToken: none,
    prefillMs: none,
    decodeMsPerToken: none,
  };
}

/** Dense's aggregate at a length, with the given per-sample scores. */
function baseline(length: number, scores: number[]): PointAggregate {
  return {
    ...point(
      'baseline',
      'dense',
      length,
      scores.map(() => 0),
      0,
    ),
    pointId: 'dense',
    sparsity: 0,
    score: aggregate(scores),
    vsDense: null,
  };
}

describe('compareLengths (finding 1: longer sequences tolerate higher sparsity)', () => {
  it('compares each shorter length with the longest, with the SE of the difference', () => {
    const rows = compareLengths([
      point('prefill', 'block_sparse', 2048, [-1, -1, 0, 0], 0.89),
      point('prefill', 'block_sparse', 3584, [0, 0, 0, -1], 0.9),
      point('prefill', 'block_sparse', 4096, [0, 0, 0, 0], 0.9),
    ]);
    expect(rows.map((r) => [r.shorter, r.longer])).toEqual([
      [2048, 4096],
      [3584, 4096],
    ]);
    const [wide, near] = rows;
    // 2048: mean -0.5, SE sqrt(1/3) / 2; 4096: mean 0, SE 0.
    expect(wide.difference).toBeCloseTo(0.5, 12);
    expect(wide.se).toBeCloseTo(Math.sqrt(1 / 3) / 2, 12);
    expect(wide.verdict).toBe('longer');
    expect([wide.shorterMeasured, wide.longerMeasured]).toEqual([0.89, 0.9]);
    // 3584: mean -0.25, SE 0.25: a difference of one SE is a tie.
    expect(near.difference).toBeCloseTo(0.25, 12);
    expect(near.se).toBeCloseTo(0.25, 12);
    expect(near.verdict).toBe('tie');
  });

  it('calls it for the shorter length when the longer one loses more, per phase in the tally', () => {
    const rows = compareLengths([
      point('decode', 'quest', 3584, [0, 0, 0], 0.9),
      point('decode', 'quest', 4096, [-1, -1, -1], 0.9),
      point('prefill', 'vertical_slash', 3584, [0, 0], 0.45),
      point('prefill', 'vertical_slash', 4096, [0, 0], 0.42),
      point('prefill', 'vertical_slash', 4096, [0, -1], 0.42, 'story_filtering'),
    ]);
    expect(rows.map((r) => [r.task, r.method, r.verdict])).toEqual([
      ['ruler_niah', 'quest', 'shorter'],
      ['ruler_niah', 'vertical_slash', 'tie'],
    ]);
    expect(tallyVerdicts(rows)).toEqual({
      all: { longer: 0, shorter: 1, tie: 1 },
      prefill: { longer: 0, shorter: 0, tie: 1 },
      decode: { longer: 0, shorter: 1, tie: 0 },
      denseAlike: { longer: 0, shorter: 1, tie: 1 },
    });
    expect(rows[0].shorterDense).toBeNaN();
  });

  it('flags comparisons where dense itself scores differently at the two lengths', () => {
    const rows = compareLengths([
      baseline(3584, [1, 1, 1]),
      baseline(4096, [0, 0, 1]),
      point('decode', 'snapkv', 3584, [-1, -1, -1], 0.9),
      point('decode', 'snapkv', 4096, [0, 0, -1], 0.9),
      baseline(2048, [1, 1, 1]),
      point('prefill', 'block_sparse', 2048, [-1, -1, -1], 0.9),
      point('prefill', 'block_sparse', 4096, [-1, -1, -1], 0.9),
    ]);
    const [decode, prefill] = rows;
    expect([decode.shorterDense, decode.longerDense]).toEqual([1, 1 / 3]);
    // |1/3 - 1| = 2/3 against an SE of sqrt(1/3) / sqrt(3) = 1/3.
    expect(decode.denseDiffers).toBe(true);
    expect(decode.verdict).toBe('longer');
    expect(prefill.denseDiffers).toBe(true);
    expect(tallyVerdicts(rows).denseAlike).toEqual({ longer: 0, shorter: 0, tie: 0 });
    const alike = compareLengths([
      baseline(2048, [1, 1]),
      baseline(4096, [1, 1]),
      point('prefill', 'block_sparse', 2048, [-1, -1], 0.9),
      point('prefill', 'block_sparse', 4096, [0, 0], 0.9),
    ]);
    expect(alike[0].denseDiffers).toBe(false);
    expect(tallyVerdicts(alike).denseAlike).toEqual({ longer: 1, shorter: 0, tie: 0 });
  });

  it('refuses a point that two merged files both hold at one length', () => {
    expect(() =>
      compareLengths([
        point('decode', 'quest', 4096, [0], 0.9),
        point('decode', 'quest', 4096, [0], 0.9),
      ]),
    ).toThrow(/appears twice at length 4096/);
  });
});
