/**
 * What the sweep plots show, computed from the per-sample results as they stream in: mean task
 * score per method and target sparsity with its standard error and sample count, the dense
 * reference on the same samples, the score against the cost model's cost relative to dense, and
 * the GPU-time speed-up against dense. Pairing is by sample: a ratio is taken per sample against
 * dense's run of that same sample, then averaged (with its standard error).
 */
import { compareLengths, type LengthComparison } from '../engine/lengthTolerance';
import { aggregate, type Aggregate } from '../engine/metrics';
import { aggregateResults } from '../engine/sweep';
import type { SampleResult, SweepPhase } from '../engine/sweepTypes';

export interface PlotFilter {
  /** A task name, or null for every task. */
  task: string | null;
  /** A length, or null for every length. */
  length: number | null;
}

/**
 * What the sparsity plots put on x: the sparsity the kernels counted in the method's phase (mean
 * over the point's samples), or the target the method was asked for. They differ for the adaptive
 * methods (FlexPrefill, BLASST, Vertical-Slash's minimum budgets), whose counted sparsity depends
 * on the data.
 */
export type SparsityAxis = 'measured' | 'target';

export interface SeriesPoint {
  /** Sparsity (measured or target, see SparsityAxis), or the relative cost for the cost plot. */
  x: number;
  /** Aggregate of the plotted quantity over the point's samples. */
  y: Aggregate;
  /** Mean measured sparsity of the phase the method acts in (kernel-counted). */
  measuredSparsity: number;
  targetSparsity: number;
}

export interface Series {
  /** `${phase}:${method}`. */
  key: string;
  phase: SweepPhase;
  method: string;
  points: SeriesPoint[];
}

export interface PlotData {
  /** Dense on the same (filtered) samples; null before its first result. */
  dense: Aggregate | null;
  series: Series[];
}

/** The latest result per key (a retried sample replaces its failure) on the filter's samples. */
export function resultsMatching(
  results: readonly SampleResult[],
  filter: PlotFilter,
): SampleResult[] {
  const latest = new Map(results.map((r) => [r.key, r]));
  return [...latest.values()].filter(
    (r) =>
      (filter.task === null || r.task === filter.task) &&
      (filter.length === null || r.length === filter.length),
  );
}

/** The successful results that match the filter. */
function selected(results: readonly SampleResult[], filter: PlotFilter): SampleResult[] {
  return resultsMatching(results, filter).filter((r) => r.status === 'ok');
}

/** Groups sparse results by series, then by target sparsity, in ascending sparsity. */
function groupSparse(results: readonly SampleResult[]): Map<string, Map<number, SampleResult[]>> {
  const series = new Map<string, Map<number, SampleResult[]>>();
  for (const r of results) {
    if (r.phase === 'baseline') continue;
    const key = `${r.phase}:${r.method}`;
    let bySparsity = series.get(key);
    if (!bySparsity) series.set(key, (bySparsity = new Map()));
    const list = bySparsity.get(r.sparsity);
    if (list) list.push(r);
    else bySparsity.set(r.sparsity, [r]);
  }
  return series;
}

function measuredOf(r: SampleResult): number {
  return r.phase === 'decode' ? r.measured.decode.sparsity : r.measured.prefill.sparsity;
}

function buildSeries(
  results: readonly SampleResult[],
  value: (r: SampleResult) => number | null,
  x: (sparsity: number, samples: SampleResult[]) => number | null,
): Series[] {
  const out: Series[] = [];
  for (const [key, bySparsity] of groupSparse(results)) {
    const [phase, method] = key.split(':') as [SweepPhase, string];
    const points: SeriesPoint[] = [];
    for (const sparsity of [...bySparsity.keys()].sort((a, b) => a - b)) {
      const samples = bySparsity.get(sparsity)!;
      const values = samples.map(value).filter((v): v is number => v !== null && isFinite(v));
      const at = x(sparsity, samples);
      if (values.length === 0 || at === null) continue;
      points.push({
        x: at,
        y: aggregate(values),
        measuredSparsity: aggregate(samples.map(measuredOf)).mean,
        targetSparsity: sparsity,
      });
    }
    if (points.length > 0) out.push({ key, phase, method, points });
  }
  return out;
}

function denseBySample(results: readonly SampleResult[]): Map<string, SampleResult> {
  return new Map(results.filter((r) => r.phase === 'baseline').map((r) => [r.sampleId, r]));
}

function denseScore(results: readonly SampleResult[]): Aggregate | null {
  const dense = results.filter((r) => r.phase === 'baseline');
  return dense.length > 0 ? aggregate(dense.map((r) => r.score)) : null;
}

/**
 * The sparsity plots' x: the target each point was built at, or the sparsity its samples counted
 * (each series then in ascending x).
 */
function onAxis(series: Series[], axis: SparsityAxis): Series[] {
  if (axis === 'target') return series;
  return series.map((s) => ({
    ...s,
    points: s.points.map((p) => ({ ...p, x: p.measuredSparsity })).sort((a, b) => a.x - b.x),
  }));
}

/** Task score against sparsity (measured or target), per method, with the dense reference. */
export function accuracyVsSparsity(
  results: readonly SampleResult[],
  filter: PlotFilter,
  axis: SparsityAxis = 'measured',
): PlotData {
  const chosen = selected(results, filter);
  return {
    dense: denseScore(chosen),
    series: onAxis(
      buildSeries(
        chosen,
        (r) => r.score,
        (s) => s,
      ),
      axis,
    ),
  };
}

/** The cost of a sample in its method's phase: prefill FLOPs or decode bytes per token. */
function phaseCost(r: SampleResult, phase: SweepPhase): number {
  return phase === 'decode' ? r.cost.decodeBytesPerToken : r.cost.prefillFlops;
}

/**
 * Task score against cost relative to dense (isoCost): x is the mean over samples of this run's
 * cost / dense's cost on the same sample, in the phase's own unit (prefill FLOPs, decode bytes).
 * Dense sits at x = 1.
 */
export function accuracyVsCost(results: readonly SampleResult[], filter: PlotFilter): PlotData {
  const chosen = selected(results, filter);
  const dense = denseBySample(chosen);
  return {
    dense: denseScore(chosen),
    series: buildSeries(
      chosen,
      (r) => r.score,
      (_, samples) => {
        const ratios = samples.flatMap((r) => {
          const base = dense.get(r.sampleId);
          const denseCost = base ? phaseCost(base, r.phase) : 0;
          return denseCost > 0 ? [phaseCost(r, r.phase) / denseCost] : [];
        });
        return ratios.length > 0 ? aggregate(ratios).mean : null;
      },
    ),
  };
}

function phaseMs(r: SampleResult, phase: SweepPhase): number {
  if (phase === 'decode') {
    return r.timings.decodeTokens > 0 ? r.timings.decodeMs / r.timings.decodeTokens : 0;
  }
  return r.timings.prefillMs;
}

/**
 * Speed-up against dense from the measured GPU times: per sample, dense's time in the method's
 * phase (prefill, or decode per token) over this run's, then averaged. Dense is 1.
 */
export function speedupVsSparsity(
  results: readonly SampleResult[],
  filter: PlotFilter,
  axis: SparsityAxis = 'measured',
): PlotData {
  const chosen = selected(results, filter);
  const dense = denseBySample(chosen);
  return {
    dense: dense.size > 0 ? aggregate([1]) : null,
    series: onAxis(
      buildSeries(
        chosen,
        (r) => {
          const base = dense.get(r.sampleId);
          const mine = phaseMs(r, r.phase);
          return base && mine > 0 ? phaseMs(base, r.phase) / mine : null;
        },
        (s) => s,
      ),
      axis,
    ),
  };
}

/** Tasks and lengths present in the results, for the plot filters. */
export function resultAxes(results: readonly SampleResult[]): {
  tasks: string[];
  lengths: number[];
} {
  return {
    tasks: [...new Set(results.map((r) => r.task))].sort(),
    lengths: [...new Set(results.map((r) => r.length))].sort((a, b) => a - b),
  };
}

/**
 * The study's first finding on these results: each point at a shorter length against the same
 * point at the longest, each against its own dense score (engine/lengthTolerance.ts), over every
 * length of the chosen task (or of every task).
 */
export function lengthComparisons(
  results: readonly SampleResult[],
  task: string | null,
): LengthComparison[] {
  return compareLengths(aggregateResults(resultsMatching(results, { task, length: null })));
}
