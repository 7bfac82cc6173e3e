import { describe, expect, it } from 'vitest';
import {
  decodeCost,
  decodeKvBytes,
  density,
  prefillAttentionFlops,
  prefillCost,
  projectionFlops,
  questSummaryBytes,
  verticalSlashEstimationFlops,
  type ModelShape,
} from '../../src/engine/costModel';
import {
  absoluteError,
  aggregate,
  argmax,
  combineRecall,
  compareNextToken,
  compareToDense,
  groupAggregate,
  groupByMethod,
  groupBySparsity,
  klDivergence,
  logSoftmax,
  mean,
  pairedDifferences,
  relativeError,
  sampleStd,
  standardError,
  summarizeNextToken,
  summarizeRecall,
  type SampleRecord,
} from '../../src/engine/metrics';

describe('aggregate', () => {
  it('mean, sample std and SE of [1, 2, 3, 4]', () => {
    const a = aggregate([1, 2, 3, 4]);
    expect(a.n).toBe(4);
    expect(a.mean).toBe(2.5);
    // sum of squares 5, divided by n - 1 = 3
    expect(a.std).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(a.se).toBeCloseTo(Math.sqrt(1.6666666666666667 / 4), 12);
    expect(a.se).toBeCloseTo(0.6454972243679028, 12);
    expect(a.min).toBe(1);
    expect(a.max).toBe(4);
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(sampleStd([1, 2, 3, 4])).toBeCloseTo(1.2909944487358056, 12);
    expect(standardError(new Float32Array([1, 2, 3, 4]))).toBeCloseTo(0.6454972243679028, 6);
  });

  it('n = 1: mean defined, std and SE are NaN (documented), never 0', () => {
    const a = aggregate([0.7]);
    expect(a.n).toBe(1);
    expect(a.mean).toBe(0.7);
    expect(a.std).toBeNaN();
    expect(a.se).toBeNaN();
  });

  it('n = 0: everything NaN but n', () => {
    const a = aggregate([]);
    expect(a.n).toBe(0);
    expect(a.mean).toBeNaN();
    expect(a.se).toBeNaN();
    expect(a.min).toBeNaN();
  });

  it('constant values have SE 0', () => {
    expect(aggregate([3, 3, 3]).se).toBe(0);
  });

  it('rejects non-finite values', () => {
    expect(() => aggregate([1, NaN])).toThrow(/not finite/);
    expect(() => aggregate([1, Infinity])).toThrow(/not finite/);
  });
});

describe('grouping', () => {
  const rec = (
    method: string,
    sparsity: number,
    sampleId: string,
    value: number,
    task = 'niah',
  ): SampleRecord => ({
    method,
    phase: 'prefill',
    task,
    length: 4096,
    sparsity,
    sampleId,
    value,
  });
  const records = [
    rec('dense', 0, 's1', 1),
    rec('dense', 0, 's2', 0.5),
    rec('quest', 0.5, 's1', 1),
    rec('quest', 0.5, 's2', 0),
    rec('quest', 0.9, 's1', 0),
    rec('quest', 0.9, 's2', 0, 'vt'),
  ];

  it('groups by method keep n and SE', () => {
    const g = groupByMethod(records);
    expect(g.map((x) => x.key.method)).toEqual(['dense', 'quest']);
    expect(g[0].n).toBe(2);
    expect(g[0].mean).toBe(0.75);
    expect(g[0].se).toBeCloseTo(0.25, 12); // std sqrt(0.125), / sqrt(2)
    expect(g[1].n).toBe(4);
    expect(g[1].mean).toBe(0.25);
    expect(g[1].se).toBeCloseTo(Math.sqrt(0.25 / 4), 12); // var = 0.75/3 = 0.25
  });

  it('groups by several keys; counts sum to the number of records', () => {
    const g = groupAggregate(records, ['method', 'sparsity', 'task']);
    expect(g.length).toBe(4);
    expect(g.reduce((s, x) => s + x.n, 0)).toBe(records.length);
    const single = g.find((x) => x.key.sparsity === 0.9 && x.key.task === 'vt');
    expect(single?.n).toBe(1);
    expect(single?.se).toBeNaN();
    expect(groupBySparsity(records).map((x) => [x.key.sparsity, x.n])).toEqual([
      [0, 2],
      [0.5, 2],
      [0.9, 2],
    ]);
    expect(groupAggregate(records, [])[0].n).toBe(6);
  });
});

describe('dense vs sparse', () => {
  it('relative error = (dense - sparse) / dense, absolute = dense - sparse', () => {
    expect(relativeError(0.8, 0.6)).toBeCloseTo(0.25, 12);
    expect(relativeError(0.5, 0.6)).toBeCloseTo(-0.2, 12);
    expect(absoluteError(0.8, 0.6)).toBeCloseTo(0.2, 12);
  });

  it('dense = 0: 0 when sparse is 0 too, NaN otherwise (documented)', () => {
    expect(relativeError(0, 0)).toBe(0);
    expect(relativeError(0, 0.5)).toBeNaN();
  });

  it('pairs by sample id and gives the paired difference its own SE', () => {
    const dense = [
      { sampleId: 'a', value: 1 },
      { sampleId: 'b', value: 0.5 },
      { sampleId: 'c', value: 1 },
      { sampleId: 'x', value: 1 },
    ];
    const sparse = [
      { sampleId: 'c', value: 0.5 },
      { sampleId: 'a', value: 1 },
      { sampleId: 'b', value: 0 },
      { sampleId: 'y', value: 0 },
    ];
    const c = compareToDense(dense, sparse);
    expect(c.n).toBe(3);
    expect(c.unpairedDense).toEqual(['x']);
    expect(c.unpairedSparse).toEqual(['y']);
    expect(c.dense.mean).toBeCloseTo(2.5 / 3, 12);
    expect(c.sparse.mean).toBeCloseTo(1.5 / 3, 12);
    // diffs sparse - dense: a 0, b -0.5, c -0.5 -> mean -1/3, var (1/9 + 1/36 + 1/36) / 2 = 1/12
    expect(c.pairedDifference.n).toBe(3);
    expect(c.pairedDifference.mean).toBeCloseTo(-1 / 3, 12);
    expect(c.pairedDifference.se).toBeCloseTo(Math.sqrt(1 / 12 / 3), 12);
    expect(c.absoluteError).toBeCloseTo(1 / 3, 12);
    expect(c.relativeError).toBeCloseTo(1 / 3 / (2.5 / 3), 12); // 0.4
    expect(c.relativeErrorSe).toBeCloseTo(Math.sqrt(1 / 36) / (2.5 / 3), 12);
    expect(pairedDifferences(dense, sparse)).toEqual({
      ids: ['a', 'b', 'c'],
      diffs: [0, -0.5, -0.5],
    });
  });

  it('rejects duplicate sample ids', () => {
    const d = [
      { sampleId: 'a', value: 1 },
      { sampleId: 'a', value: 1 },
    ];
    expect(() => compareToDense(d, [])).toThrow(/duplicate/);
  });
});

describe('next-token distributions', () => {
  it('KL of identical logits is 0', () => {
    const l = [0.3, -1.2, 2.5, 0, 7];
    expect(klDivergence(l, l)).toBe(0);
    expect(klDivergence(new Float32Array(l), new Float32Array(l))).toBe(0);
  });

  it('two-token hand case matches the closed form', () => {
    // dense [0, ln 3] -> p = [1/4, 3/4]; sparse [0, 0] -> q = [1/2, 1/2]
    const expected = 0.25 * Math.log(0.25 / 0.5) + 0.75 * Math.log(0.75 / 0.5);
    expect(klDivergence([0, Math.log(3)], [0, 0])).toBeCloseTo(expected, 14);
    expect(expected).toBeCloseTo(0.1308120359, 9);
    // and the reverse direction differs (KL is not symmetric)
    const reverse = 0.5 * Math.log(0.5 / 0.25) + 0.5 * Math.log(0.5 / 0.75);
    expect(klDivergence([0, 0], [0, Math.log(3)])).toBeCloseTo(reverse, 14);
  });

  it('is invariant to adding a constant to either logit vector', () => {
    const p = [1, 2, -0.5, 3];
    const q = [0.5, 2.5, 0, 1];
    const base = klDivergence(p, q);
    expect(
      klDivergence(
        p.map((x) => x + 1000),
        q.map((x) => x - 37),
      ),
    ).toBeCloseTo(base, 10);
  });

  it('extreme logits (1e4 magnitudes) stay finite', () => {
    const ls = logSoftmax([1e4, -1e4, 0]);
    expect(ls[0]).toBe(0);
    expect(ls[1]).toBe(-2e4);
    expect([...ls].every(Number.isFinite)).toBe(true);
    const kl = klDivergence([1e4, -1e4, 0], [-1e4, 1e4, 0]);
    expect(Number.isFinite(kl)).toBe(true);
    // p ~ one-hot on token 0; log p0 - log q0 = 0 - (-2e4)
    expect(kl).toBeCloseTo(2e4, 6);
    expect(klDivergence([1e4, 1e4 - 1], [1e4, 1e4 - 1])).toBe(0);
  });

  it('masked (-Infinity) logits: p = 0 terms vanish, q = 0 under p > 0 is Infinity', () => {
    expect(klDivergence([-Infinity, 0], [0, 0])).toBeCloseTo(Math.log(2), 14);
    expect(klDivergence([0, 0], [-Infinity, 0])).toBe(Infinity);
    expect(() => klDivergence([NaN, 0], [0, 0])).toThrow();
    expect(() => klDivergence([0, 0], [0, 0, 0])).toThrow(/differ/);
  });

  it('top-1 agreement', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    const same = compareNextToken([0, 5, 1], [0.1, 4, 3.9]);
    expect(same.top1Agree).toBe(true);
    expect(same.denseTop1).toBe(1);
    const diff = compareNextToken([0, 5, 1], [0, 1, 5]);
    expect(diff.top1Agree).toBe(false);
    expect(diff.sparseTop1).toBe(2);
    const s = summarizeNextToken([same, diff, same, same]);
    expect(s.top1Agreement.n).toBe(4);
    expect(s.top1Agreement.mean).toBe(0.75);
    expect(s.kl.n).toBe(4);
  });
});

describe('attention recall', () => {
  it('averages per-query recall with the query count and the mode', () => {
    const r = summarizeRecall([1, 0.5, 0.75, 0.75], 'exact');
    expect(r).toMatchObject({ recall: 0.75, queries: 4, mode: 'exact' });
    expect(r.se).toBeCloseTo(Math.sqrt(0.125 / 3 / 4), 12);
    expect(() => summarizeRecall([1.5], 'exact')).toThrow(/outside/);
  });

  it('combines query-weighted; sampled if any part is sampled', () => {
    const a = summarizeRecall([1, 1, 1], 'exact');
    const b = summarizeRecall([0.5], 'sampled');
    const c = combineRecall([a, b]);
    expect(c.queries).toBe(4);
    expect(c.recall).toBeCloseTo(3.5 / 4, 12);
    expect(c.mode).toBe('sampled');
    expect(combineRecall([a, a]).mode).toBe('exact');
  });
});

describe('cost model', () => {
  // L = 4, h = 2, n_kv = 1, d_h = 3, d = 6, 2 layers
  const shape: ModelShape = { layers: 2, heads: 2, kvHeads: 1, headDim: 3, width: 6 };

  it('prefill attention FLOPs by hand: 4 h L^2 d_h + 3 h L^2 = 384 + 96 per layer', () => {
    const dense = prefillAttentionFlops(shape, 4, 0);
    expect(dense).toEqual({ perLayer: 480, total: 960, region: 'square' });
    const causal = prefillAttentionFlops(shape, 4, 0, 'causal');
    expect(causal).toEqual({ perLayer: 240, total: 480, region: 'causal' });
  });

  it('scales linearly with rho = 1 - sparsity', () => {
    expect(density(0.75)).toBe(0.25);
    expect(prefillAttentionFlops(shape, 4, 0.5).total).toBe(480);
    expect(prefillAttentionFlops(shape, 4, 0.75).perLayer).toBe(120);
    expect(prefillAttentionFlops(shape, 4, 1).total).toBe(0);
    expect(() => prefillAttentionFlops(shape, 4, 1.2)).toThrow();
  });

  it('projections 2 L d (2d + 2 d_h n_kv) = 48 * 18 per layer, not shrinking', () => {
    expect(projectionFlops(shape, 4)).toEqual({ perLayer: 864, total: 1728 });
    const p0 = prefillCost(shape, 4, 0);
    const p9 = prefillCost(shape, 4, 0.9);
    expect(p9.projections).toEqual(p0.projections);
    expect(p0.total).toBe(960 + 1728);
    expect(p0.region).toBe('square');
  });

  it('Vertical-Slash estimation overhead h q L (2 d_h + 5), q = min(last_q, L)', () => {
    expect(verticalSlashEstimationFlops(shape, 4, 2)).toEqual({ perLayer: 176, total: 352 });
    expect(verticalSlashEstimationFlops(shape, 4, 256).perLayer).toBe(2 * 4 * 4 * 11);
    const c = prefillCost(shape, 4, 0.5, {
      region: 'causal',
      overhead: { kind: 'estimation', lastQ: 2 },
    });
    expect(c.region).toBe('causal');
    expect(c.attention.total).toBe(240);
    expect(c.overhead.total).toBe(352);
    expect(c.total).toBe(240 + 1728 + 352);
  });

  it('decode KV bytes 2 L d_h n_kv * bytes * rho', () => {
    expect(decodeKvBytes(shape, 4, 0, 2)).toEqual({ perLayer: 48, total: 96 });
    expect(decodeKvBytes(shape, 4, 0.75, 2)).toEqual({ perLayer: 12, total: 24 });
  });

  it('Quest overhead: 2 d_h n_kv L / P summaries', () => {
    // 2 * 3 * 1 * 4 / 2 = 12 elements, * 2 bytes = 24 bytes per layer
    expect(questSummaryBytes(shape, 4, 2, 2)).toEqual({ perLayer: 24, total: 48 });
    const q = decodeCost(shape, 4, 0.5, 2, { kind: 'quest', pageSize: 2 });
    expect(q.kv.total).toBe(48);
    expect(q.overhead.total).toBe(48);
    expect(q.total).toBe(96);
    expect(decodeCost(shape, 4, 0.5, 2).overhead.total).toBe(0);
  });

  it('a realistic shape: Quest at 32K with P = 16 reads 1/16 of the cache in summaries', () => {
    const llama: ModelShape = { layers: 32, heads: 32, kvHeads: 8, headDim: 128, width: 4096 };
    const dense = decodeKvBytes(llama, 32768, 0, 2).total;
    expect(dense).toBe(32 * 2 * 32768 * 128 * 8 * 2);
    expect(questSummaryBytes(llama, 32768, 16, 2).total).toBe(dense / 16);
  });
});
