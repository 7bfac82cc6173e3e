/**
 * Aggregation and comparison metrics for the sweep engine (pure, no GPU, no I/O).
 *
 * Statistical conventions, used everywhere in this file:
 * - `std` is the SAMPLE standard deviation (divisor n - 1); `se` = std / sqrt(n) is the standard
 *   error of the mean. Both are NaN when n < 2: one sample says nothing about spread, and we would
 *   rather print "n=1, SE n/a" than a fake 0. The mean of an empty list is NaN.
 * - Every aggregate carries `n`, so a table can never show a mean without its sample count.
 * - Non-finite inputs (NaN, +-Infinity) are rejected with an error instead of silently poisoning
 *   a mean: a failed sample must be dropped (and counted) by the caller, not averaged.
 * - Dense vs sparse is compared on the SAME samples (paired by sample id), as the study does.
 */
import type { Phase } from '../methods/types';

/** Summary of a list of per-sample values. */
export interface Aggregate {
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1); NaN when n < 2. */
  std: number;
  /** Standard error of the mean, std / sqrt(n); NaN when n < 2. */
  se: number;
  min: number;
  max: number;
}

function assertFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new Error(`${what}: value ${i} is not finite (${values[i]})`);
    }
  }
}

/** Arithmetic mean (NaN for an empty list). */
export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum / values.length;
}

/** Sample standard deviation with divisor n - 1 (NaN when n < 2). Two-pass for stability. */
export function sampleStd(values: ArrayLike<number>): number {
  const n = values.length;
  if (n < 2) return NaN;
  const m = mean(values);
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i] - m;
    ss += d * d;
  }
  return Math.sqrt(ss / (n - 1));
}

/** Standard error of the mean: sampleStd / sqrt(n) (NaN when n < 2). */
export function standardError(values: ArrayLike<number>): number {
  const n = values.length;
  if (n < 2) return NaN;
  return sampleStd(values) / Math.sqrt(n);
}

/** n, mean, sample std, SE, min and max of per-sample values. Throws on non-finite values. */
export function aggregate(values: ArrayLike<number>): Aggregate {
  assertFinite(values, 'aggregate');
  const n = values.length;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    if (values[i] < min) min = values[i];
    if (values[i] > max) max = values[i];
  }
  return {
    n,
    mean: mean(values),
    std: sampleStd(values),
    se: standardError(values),
    min: n === 0 ? NaN : min,
    max: n === 0 ? NaN : max,
  };
}

// ---------------------------------------------------------------------------------------------
// Grouping

/** One scored sample of a sweep: which configuration produced it, and its value. */
export interface SampleRecord {
  method: string;
  phase: Phase;
  task: string;
  /** Target sequence length (tokens). */
  length: number;
  /** Configured sparsity in [0, 1). */
  sparsity: number;
  /** Identifies the sample (prompt) so dense and sparse runs can be paired. */
  sampleId: string;
  value: number;
}

export type GroupKey = 'method' | 'phase' | 'task' | 'length' | 'sparsity';

/** The aggregate of one group, with the values of the grouping keys that define it. */
export interface GroupAggregate extends Aggregate {
  key: Partial<Pick<SampleRecord, GroupKey>>;
}

/**
 * Groups records by the given keys (in that order) and aggregates `value` per group.
 * Groups come out in order of first appearance; every group carries n and se.
 * With no keys, everything is one group.
 */
export function groupAggregate(
  records: readonly SampleRecord[],
  keys: readonly GroupKey[],
): GroupAggregate[] {
  const groups = new Map<string, { key: GroupAggregate['key']; values: number[] }>();
  for (const r of records) {
    const id = JSON.stringify(keys.map((k) => r[k]));
    let g = groups.get(id);
    if (!g) {
      const key: GroupAggregate['key'] = {};
      for (const k of keys) (key as Record<string, unknown>)[k] = r[k];
      g = { key, values: [] };
      groups.set(id, g);
    }
    g.values.push(r.value);
  }
  return [...groups.values()].map((g) => ({ key: g.key, ...aggregate(g.values) }));
}

export const groupByMethod = (records: readonly SampleRecord[]) =>
  groupAggregate(records, ['method']);
export const groupByPhase = (records: readonly SampleRecord[]) =>
  groupAggregate(records, ['phase']);
export const groupByTask = (records: readonly SampleRecord[]) => groupAggregate(records, ['task']);
export const groupByLength = (records: readonly SampleRecord[]) =>
  groupAggregate(records, ['length']);
export const groupBySparsity = (records: readonly SampleRecord[]) =>
  groupAggregate(records, ['sparsity']);

// ---------------------------------------------------------------------------------------------
// Dense vs sparse

/**
 * Relative error of the study: (dense - sparse) / dense. Positive = sparse is worse.
 *
 * dense = 0 (the dense model scored nothing): if sparse is also 0 the result is 0 (no
 * degradation); otherwise it is NaN, because the ratio is undefined. Callers must show such a
 * cell as "n/a" (and may fall back to the absolute error); it is never turned into +-Infinity.
 */
export function relativeError(dense: number, sparse: number): number {
  if (!Number.isFinite(dense) || !Number.isFinite(sparse)) {
    throw new Error(`relativeError: non-finite input (dense ${dense}, sparse ${sparse})`);
  }
  if (dense === 0) return sparse === 0 ? 0 : NaN;
  return (dense - sparse) / dense;
}

/** Absolute error, signed like the relative error: dense - sparse (positive = sparse is worse). */
export function absoluteError(dense: number, sparse: number): number {
  if (!Number.isFinite(dense) || !Number.isFinite(sparse)) {
    throw new Error(`absoluteError: non-finite input (dense ${dense}, sparse ${sparse})`);
  }
  return dense - sparse;
}

/** A per-sample score keyed by sample id. */
export interface ScoredSample {
  sampleId: string;
  value: number;
}

/** Dense vs sparse on the same samples. */
export interface DenseComparison {
  /** Number of paired samples every number below is computed on. */
  n: number;
  dense: Aggregate;
  sparse: Aggregate;
  /** Per-sample sparse - dense, with its own SE (the honest error bar of the difference). */
  pairedDifference: Aggregate;
  /** dense mean - sparse mean (= -pairedDifference.mean). */
  absoluteError: number;
  /** relativeError(dense mean, sparse mean); NaN when the dense mean is 0 and sparse is not. */
  relativeError: number;
  /**
   * Approximate SE of the relative error: pairedDifference.se / |dense mean| (treats the dense
   * mean as fixed). NaN when n < 2 or the dense mean is 0.
   */
  relativeErrorSe: number;
  /** Sample ids present in only one of the two runs (left out of every number above). */
  unpairedDense: string[];
  unpairedSparse: string[];
}

function indexById(samples: readonly ScoredSample[], what: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of samples) {
    if (m.has(s.sampleId)) throw new Error(`${what}: duplicate sample id ${s.sampleId}`);
    if (!Number.isFinite(s.value)) {
      throw new Error(`${what}: sample ${s.sampleId} is not finite (${s.value})`);
    }
    m.set(s.sampleId, s.value);
  }
  return m;
}

/** Paired differences sparse - dense per sample (on the ids both runs have, in dense order). */
export function pairedDifferences(
  dense: readonly ScoredSample[],
  sparse: readonly ScoredSample[],
): { ids: string[]; diffs: number[] } {
  const s = indexById(sparse, 'sparse');
  const d = indexById(dense, 'dense');
  const ids: string[] = [];
  const diffs: number[] = [];
  for (const [id, dv] of d) {
    const sv = s.get(id);
    if (sv === undefined) continue;
    ids.push(id);
    diffs.push(sv - dv);
  }
  return { ids, diffs };
}

/** Compares a sparse run with the dense run on the samples both contain. */
export function compareToDense(
  dense: readonly ScoredSample[],
  sparse: readonly ScoredSample[],
): DenseComparison {
  const d = indexById(dense, 'dense');
  const s = indexById(sparse, 'sparse');
  const dv: number[] = [];
  const sv: number[] = [];
  const diffs: number[] = [];
  const unpairedDense: string[] = [];
  for (const [id, v] of d) {
    const w = s.get(id);
    if (w === undefined) {
      unpairedDense.push(id);
      continue;
    }
    dv.push(v);
    sv.push(w);
    diffs.push(w - v);
  }
  const unpairedSparse = [...s.keys()].filter((id) => !d.has(id));
  const denseAgg = aggregate(dv);
  const sparseAgg = aggregate(sv);
  const diffAgg = aggregate(diffs);
  const n = dv.length;
  const rel = n === 0 ? NaN : relativeError(denseAgg.mean, sparseAgg.mean);
  return {
    n,
    dense: denseAgg,
    sparse: sparseAgg,
    pairedDifference: diffAgg,
    absoluteError: n === 0 ? NaN : denseAgg.mean - sparseAgg.mean,
    relativeError: rel,
    relativeErrorSe: n < 2 || denseAgg.mean === 0 ? NaN : diffAgg.se / Math.abs(denseAgg.mean),
    unpairedDense,
    unpairedSparse,
  };
}

// ---------------------------------------------------------------------------------------------
// Next-token distributions

/**
 * log-softmax in float64: x_i - (m + log sum_j exp(x_j - m)), m = max x. Finite for any finite
 * logits (1e4 magnitudes included). -Infinity logits (masked tokens) give -Infinity.
 */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  const n = logits.length;
  if (n === 0) throw new Error('logSoftmax: empty logits');
  let m = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    if (Number.isNaN(x) || x === Infinity) throw new Error(`logSoftmax: logit ${i} is ${x}`);
    if (x > m) m = x;
  }
  if (m === -Infinity) throw new Error('logSoftmax: every logit is -Infinity');
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[i] - m);
  const lse = m + Math.log(sum);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = logits[i] - lse;
  return out;
}

/**
 * KL(dense || sparse) = sum_i p_i (log p_i - log q_i) in nats, p = softmax(dense),
 * q = softmax(sparse), computed from log-softmax in float64. Invariant to adding a constant to
 * either logit vector. Terms with p_i = 0 contribute 0; p_i > 0 with q_i = 0 gives Infinity.
 * Tiny negative rounding results are clamped to 0.
 */
export function klDivergence(
  denseLogits: ArrayLike<number>,
  sparseLogits: ArrayLike<number>,
): number {
  if (denseLogits.length !== sparseLogits.length) {
    throw new Error(
      `klDivergence: vocabulary sizes differ (${denseLogits.length} vs ${sparseLogits.length})`,
    );
  }
  const lp = logSoftmax(denseLogits);
  const lq = logSoftmax(sparseLogits);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) {
    if (lp[i] === -Infinity) continue;
    const p = Math.exp(lp[i]);
    if (p === 0) continue;
    kl += p * (lp[i] - lq[i]);
  }
  return kl < 0 ? 0 : kl;
}

/** Index of the largest logit (the first one on ties). */
export function argmax(values: ArrayLike<number>): number {
  if (values.length === 0) throw new Error('argmax: empty');
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export interface NextTokenComparison {
  /** KL(dense || sparse) in nats. */
  kl: number;
  denseTop1: number;
  sparseTop1: number;
  /** Whether the greedy next token is the same. */
  top1Agree: boolean;
}

/** Compares the next-token distributions of the dense and the sparse model from their logits. */
export function compareNextToken(
  denseLogits: ArrayLike<number>,
  sparseLogits: ArrayLike<number>,
): NextTokenComparison {
  const kl = klDivergence(denseLogits, sparseLogits);
  const denseTop1 = argmax(denseLogits);
  const sparseTop1 = argmax(sparseLogits);
  return { kl, denseTop1, sparseTop1, top1Agree: denseTop1 === sparseTop1 };
}

/** Aggregates of KL and of top-1 agreement (as 0/1 values, so the mean is the agreement rate). */
export function summarizeNextToken(comparisons: readonly NextTokenComparison[]): {
  kl: Aggregate;
  top1Agreement: Aggregate;
} {
  return {
    kl: aggregate(comparisons.map((c) => c.kl)),
    top1Agreement: aggregate(comparisons.map((c) => (c.top1Agree ? 1 : 0))),
  };
}

// ---------------------------------------------------------------------------------------------
// Attention recall

/** exact: computed over every query; sampled: over a subset of queries. */
export type RecallMode = 'exact' | 'sampled';

export interface RecallSummary {
  /** Mean recall over the queries it was computed on. */
  recall: number;
  /** SE over queries (NaN when fewer than 2 queries). */
  se: number;
  /** Number of queries the recall was computed on. */
  queries: number;
  mode: RecallMode;
}

/**
 * Summarises per-query recalls (each in [0, 1]). `mode` says whether these are all the queries
 * ('exact') or a sample of them ('sampled').
 */
export function summarizeRecall(perQuery: ArrayLike<number>, mode: RecallMode): RecallSummary {
  const a = aggregate(perQuery);
  for (let i = 0; i < perQuery.length; i++) {
    if (perQuery[i] < -1e-9 || perQuery[i] > 1 + 1e-9) {
      throw new Error(`summarizeRecall: recall ${perQuery[i]} of query ${i} is outside [0, 1]`);
    }
  }
  return { recall: a.mean, se: a.se, queries: a.n, mode };
}

/**
 * Combines recall summaries (e.g. over layers, heads or samples) into a query-weighted mean.
 * The result is 'exact' only if every part is exact; `se` is the SE across the parts' recalls
 * (NaN with fewer than 2 parts), since per-query values are no longer available.
 */
export function combineRecall(parts: readonly RecallSummary[]): RecallSummary {
  let queries = 0;
  let weighted = 0;
  for (const p of parts) {
    queries += p.queries;
    weighted += p.recall * p.queries;
  }
  return {
    recall: queries === 0 ? NaN : weighted / queries,
    se: standardError(parts.map((p) => p.recall)),
    queries,
    mode: parts.every((p) => p.mode === 'exact') ? 'exact' : 'sampled',
  };
}
