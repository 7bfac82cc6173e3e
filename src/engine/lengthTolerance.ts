/**
 * The study's first finding, "longer sequences tolerate higher sparsity", asked of a sweep's
 * aggregates: for every point (task, phase, method, target sparsity) swept at two or more lengths,
 * each shorter length is compared with the longest. What is compared is the point's paired
 * difference against dense at that length (mean of method - dense over the same samples), so each
 * length is judged against its own dense score. The two lengths' samples are independent, so the
 * difference of the two means has SE sqrt(se_short^2 + se_long^2); a comparison counts for the
 * longer (or the shorter) length only when the difference exceeds one such SE, else it is a tie.
 * Where dense itself scores differently at the two lengths (beyond one SE), a method has less (or
 * more) to lose at one of them; such comparisons are flagged `denseDiffers`, and tallied apart.
 */
import type { PointAggregate } from './sweepTypes';

export type LengthVerdict = 'longer' | 'shorter' | 'tie';

export interface LengthComparison {
  task: string;
  phase: PointAggregate['phase'];
  method: string;
  sparsity: number;
  shorter: number;
  longer: number;
  /** Mean (method - dense) score at each length, over the paired samples. */
  shorterDelta: number;
  longerDelta: number;
  /** longerDelta - shorterDelta: positive when the longer length loses less to sparsity. */
  difference: number;
  se: number;
  /** Dense's mean score at each length (NaN when the results hold no baseline there). */
  shorterDense: number;
  longerDense: number;
  /** Dense's scores differ by more than one SE of their difference. */
  denseDiffers: boolean;
  /** Kernel-counted sparsity of the phase the method makes sparse, at each length. */
  shorterMeasured: number;
  longerMeasured: number;
  verdict: LengthVerdict;
}

/** The kernel-counted sparsity of the phase a point makes sparse (prefill for the baseline). */
export function phaseSparsity(a: PointAggregate): number {
  return a.phase === 'decode' ? a.measuredSparsity.decode.mean : a.measuredSparsity.prefill.mean;
}

/** An SE that is NaN (one sample) counts as 0: the comparison then rests on the means alone. */
function seOrZero(se: number): number {
  return Number.isFinite(se) ? se : 0;
}

export function compareLengths(aggregates: readonly PointAggregate[]): LengthComparison[] {
  const dense = new Map<string, PointAggregate>();
  for (const a of aggregates) {
    if (a.phase === 'baseline' && a.task !== null && a.length !== null) {
      dense.set(`${a.task}@${a.length}`, a);
    }
  }
  const byPoint = new Map<string, PointAggregate[]>();
  const seen = new Set<string>();
  for (const a of aggregates) {
    if (a.phase === 'baseline' || a.task === null || a.length === null || !a.vsDense) continue;
    const key = JSON.stringify([a.task, a.phase, a.method, a.sparsity]);
    const atLength = `${key}@${a.length}`;
    if (seen.has(atLength)) {
      throw new Error(
        `${a.task} ${a.pointId} appears twice at length ${a.length}: merge one results file per length`,
      );
    }
    seen.add(atLength);
    byPoint.set(key, [...(byPoint.get(key) ?? []), a]);
  }
  const comparisons: LengthComparison[] = [];
  for (const group of byPoint.values()) {
    const sorted = [...group].sort((a, b) => (a.length ?? 0) - (b.length ?? 0));
    const longest = sorted[sorted.length - 1];
    for (const short of sorted.slice(0, -1)) {
      const shortDelta = short.vsDense!.pairedDifference;
      const longDelta = longest.vsDense!.pairedDifference;
      const difference = longDelta.mean - shortDelta.mean;
      const se = Math.hypot(seOrZero(shortDelta.se), seOrZero(longDelta.se));
      const shortDense = dense.get(`${short.task}@${short.length}`)?.score;
      const longDense = dense.get(`${longest.task}@${longest.length}`)?.score;
      const denseGap =
        shortDense && longDense ? Math.abs(longDense.mean - shortDense.mean) : Number.NaN;
      const denseSe =
        shortDense && longDense ? Math.hypot(seOrZero(shortDense.se), seOrZero(longDense.se)) : 0;
      const verdict: LengthVerdict =
        Math.abs(difference) > se && difference !== 0
          ? difference > 0
            ? 'longer'
            : 'shorter'
          : 'tie';
      comparisons.push({
        task: short.task!,
        phase: short.phase,
        method: short.method,
        sparsity: short.sparsity,
        shorter: short.length!,
        longer: longest.length!,
        shorterDelta: shortDelta.mean,
        longerDelta: longDelta.mean,
        difference,
        se,
        shorterDense: shortDense?.mean ?? Number.NaN,
        longerDense: longDense?.mean ?? Number.NaN,
        denseDiffers: denseGap > denseSe,
        shorterMeasured: phaseSparsity(short),
        longerMeasured: phaseSparsity(longest),
        verdict,
      });
    }
  }
  return comparisons.sort(
    (a, b) =>
      a.task.localeCompare(b.task) ||
      a.phase.localeCompare(b.phase) ||
      a.method.localeCompare(b.method) ||
      a.sparsity - b.sparsity ||
      a.shorter - b.shorter,
  );
}

/** How many comparisons went each way: overall, per phase, and where dense scores alike. */
export function tallyVerdicts(
  comparisons: readonly LengthComparison[],
): Record<'all' | 'prefill' | 'decode' | 'denseAlike', Record<LengthVerdict, number>> {
  const empty = (): Record<LengthVerdict, number> => ({ longer: 0, shorter: 0, tie: 0 });
  const tally = { all: empty(), prefill: empty(), decode: empty(), denseAlike: empty() };
  for (const c of comparisons) {
    tally.all[c.verdict]++;
    if (c.phase === 'prefill' || c.phase === 'decode') tally[c.phase][c.verdict]++;
    if (!c.denseDiffers) tally.denseAlike[c.verdict]++;
  }
  return tally;
}
