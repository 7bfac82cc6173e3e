import { describe, expect, it } from 'vitest';
import { klDivergence } from '../../src/engine/metrics';
import { MemoryResultStore } from '../../src/engine/store/memory';
import {
  aggregateResults,
  attentionFor,
  BASELINE_ID,
  runSweep,
  sweepFingerprint,
  sweepPoints,
  validateSweepConfig,
} from '../../src/engine/sweep';
import type {
  AttentionPair,
  BackendRun,
  ConfiguredRunner,
  PhaseMeasurement,
  SampleResult,
  SweepBackend,
  SweepConfig,
  SweepEvent,
  SweepModelInfo,
  SweepPoint,
} from '../../src/engine/sweepTypes';
import { getTask } from '../../src/tasks/registry';
import type { TaskSample } from '../../src/tasks/types';

const words = (text: string) => text.split(/\s+/).filter((w) => w.length > 0);
const countWords = { count: (text: string) => words(text).length };

const MODEL: SweepModelInfo = {
  name: 'fake',
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  width: 64,
  vocabSize: 8,
  maxPositions: 4096,
  kvBytes: 4,
};

const CONFIG: SweepConfig = {
  tasks: ['ruler_niah'],
  lengths: [320, 400],
  samples: 4,
  prefillMethods: ['block_sparse'],
  decodeMethods: ['quest'],
  sparsities: [0.5, 0.9],
  maxNewTokens: 16,
};

/**
 * The fake's recall: none for the baseline; prefill exact over the prompt at length 320 and on 64
 * sampled queries at 400; decode on its one query, or unavailable at 400.
 */
function fakeRecall(
  point: SweepPoint,
  length: number,
  promptTokens: number,
  sparsity: number,
): Pick<BackendRun, 'recall' | 'recallUnavailable'> {
  if (point.phase === 'baseline') return { recall: null };
  if (point.phase === 'decode') {
    return length === 320
      ? { recall: { recall: 0.9, kind: 'exact', queries: 1 } }
      : { recall: null, recallUnavailable: 'fake: no kept set' };
  }
  return length === 320
    ? { recall: { recall: 1 - sparsity / 2, kind: 'exact', queries: promptTokens } }
    : { recall: { recall: 1 - sparsity / 2, kind: 'sampled', queries: 64 } };
}

/** Needles a point returns correctly for each seed (dense: all four). */
function needlesFound(point: SweepPoint, seed: number): number {
  if (point.phase === 'baseline') return 4;
  if (point.id === 'prefill:block_sparse@0.5') return [4, 2, 3, 1][seed];
  return point.phase === 'decode' ? 4 - (seed % 2) : 3;
}

/** Next-token logits of a point on a seed; decode points equal dense after the prompt. */
function logitsFor(point: SweepPoint, seed: number, position: 'prompt' | 'first'): Float32Array {
  const shift =
    point.phase === 'baseline' || (point.phase === 'decode' && position === 'prompt')
      ? 0
      : point.sparsity + seed / 10;
  return Float32Array.from({ length: MODEL.vocabSize }, (_, i) =>
    position === 'prompt' ? i * (1 - shift) : (MODEL.vocabSize - i) * (1 + shift),
  );
}

function measurement(sparsity: number): PhaseMeasurement {
  return {
    sparsity,
    touched: 100 - sparsity * 100,
    total: 100,
    layers: [0, 1].map((layer) => ({
      layer,
      method: 'fake',
      unit: 'blocks',
      touched: 50 - sparsity * 50,
      total: 50,
      sparsity,
    })),
    plannerMs: 0,
  };
}

interface FakeOptions {
  /** Throws in run() for these (point id, seed) pairs. */
  failOn?: (point: SweepPoint, seed: number) => boolean;
  /** Called before each run with its 1-based count. */
  beforeRun?: (count: number) => void;
  failConfigure?: (point: SweepPoint) => boolean;
}

/** A backend whose answers are known: it looks the sample and the point up from its inputs. */
class FakeBackend implements SweepBackend {
  readonly model = MODEL;
  readonly configured: { point: SweepPoint; maxSeqLen: number }[] = [];
  readonly runs: { point: SweepPoint; seed: number; length: number }[] = [];
  private readonly prompts: string[] = [];
  private readonly samplesByPrompt = new Map<string, TaskSample>();
  private readonly pointsByAttention = new Map<string, SweepPoint>();

  constructor(
    config: SweepConfig,
    private readonly options: FakeOptions = {},
  ) {
    for (const length of config.lengths) {
      for (const point of sweepPoints(config)) {
        const key = JSON.stringify(attentionFor(point, length, MODEL));
        const known = this.pointsByAttention.get(key);
        if (known && known.id !== point.id) throw new Error(`fake: ${point.id} = ${known.id}`);
        this.pointsByAttention.set(key, point);
      }
      for (const task of config.tasks) {
        for (let i = 0; i < config.samples; i++) {
          const sample = getTask(task).generate({
            seed: (config.seed ?? 0) + i,
            targetTokens: length,
            tokenizer: countWords,
          });
          this.samplesByPrompt.set(sample.prompt, sample);
        }
      }
    }
  }

  countTokens(text: string): number {
    return words(text).length;
  }

  encodePrompt(prompt: string): number[] {
    let index = this.prompts.indexOf(prompt);
    if (index < 0) index = this.prompts.push(prompt) - 1;
    return [index, ...new Array<number>(words(prompt).length - 1).fill(0)];
  }

  async configure(attention: AttentionPair, maxSeqLen: number): Promise<ConfiguredRunner> {
    const prompts = this.prompts;
    const point = this.pointsByAttention.get(JSON.stringify(attention));
    if (!point) throw new Error('fake: unknown attention');
    if (this.options.failConfigure?.(point)) throw new Error('fake configure failure');
    this.configured.push({ point, maxSeqLen });
    return {
      run: async (ids, { signal }): Promise<BackendRun> => {
        const sample = this.samplesByPrompt.get(prompts[ids[0]])!;
        this.runs.push({ point, seed: sample.seed, length: sample.targetTokens });
        this.options.beforeRun?.(this.runs.length);
        if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
        if (this.options.failOn?.(point, sample.seed)) throw new Error('fake kernel failure');
        const values = (sample.answer as string[]).slice(0, needlesFound(point, sample.seed));
        const sparsity = point.phase === 'baseline' ? 0 : point.sparsity * 0.9;
        return {
          outputIds: [1, 2, 3],
          output: `<answer>${values.join(' ')}</answer>`,
          logits: {
            afterPrompt: logitsFor(point, sample.seed, 'prompt'),
            afterFirstToken: logitsFor(point, sample.seed, 'first'),
          },
          measured: {
            prefill: measurement(point.phase === 'prefill' ? sparsity : 0),
            decode: measurement(point.phase === 'decode' ? sparsity : 0),
          },
          ...fakeRecall(point, sample.targetTokens, ids.length, sparsity),
          timings: {
            source: 'wall-clock',
            prefillMs: 10,
            prefillTokens: ids.length,
            decodeMs: 6,
            decodeTokens: 3,
          },
        };
      },
      dispose: () => {},
    };
  }
}

async function collect(events: AsyncGenerator<SweepEvent>): Promise<SweepEvent[]> {
  const out: SweepEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

const resultsOf = (events: SweepEvent[]) =>
  events.flatMap((e) => (e.type === 'result' ? [e.result] : []));

describe('sweep plan and validation', () => {
  it('pairs every prefill method with dense decode and every decode method with dense prefill', () => {
    const points = sweepPoints(CONFIG);
    expect(points.map((p) => p.id)).toEqual([
      'dense',
      'prefill:block_sparse@0.5',
      'prefill:block_sparse@0.9',
      'decode:quest@0.5',
      'decode:quest@0.9',
    ]);
    const prefill = attentionFor(points[1], 320, MODEL);
    expect(prefill.decode).toEqual({ name: 'dense', params: {} });
    expect(prefill.prefill.name).toBe('block_sparse');
    const decode = attentionFor(points[3], 320, MODEL);
    expect(decode.prefill).toEqual({ name: 'dense', params: {} });
    expect(decode.decode.name).toBe('quest');
  });

  it('rejects bad configs with a message that says what to change', () => {
    expect(() => validateSweepConfig({ ...CONFIG, tasks: ['ruler_nope'] }, MODEL)).toThrow(
      /unknown task "ruler_nope"/,
    );
    expect(() => validateSweepConfig({ ...CONFIG, prefillMethods: ['quest'] }, MODEL)).toThrow(
      /quest is not a prefill method/,
    );
    expect(() => validateSweepConfig({ ...CONFIG, sparsities: [0.99] }, MODEL)).toThrow(
      /sparsities.*0\.95/,
    );
    expect(() => validateSweepConfig({ ...CONFIG, lengths: [4090] }, MODEL)).toThrow(
      /use lengths up to 4080/,
    );
    expect(() => validateSweepConfig({ ...CONFIG, samples: 0 }, MODEL)).toThrow(/samples/);
    expect(() => validateSweepConfig({ ...CONFIG, recallLayer: 2 }, MODEL)).toThrow(
      /recallLayer: 2 is not a layer of fake \(0 to 1\)/,
    );
    expect(() => validateSweepConfig({ ...CONFIG, prefillMethods: ['dense'] }, MODEL)).toThrow(
      /dense is the baseline/,
    );
  });

  it('keeps results with and without recall apart, and old stores without recall resumable', () => {
    const plain = sweepFingerprint(CONFIG, MODEL);
    expect(plain).toBe(`fake|maxNewTokens=${CONFIG.maxNewTokens}`);
    expect(sweepFingerprint({ ...CONFIG, recallLayer: 1 }, MODEL)).toBe(`${plain}|recallLayer=1`);
    expect(sweepFingerprint({ ...CONFIG, recallLayer: 0 }, MODEL)).not.toBe(
      sweepFingerprint({ ...CONFIG, recallLayer: 1 }, MODEL),
    );
  });
});

describe('runSweep with a fake backend', () => {
  it('runs every point on every sample, baseline first, one configuration per point and length', async () => {
    const backend = new FakeBackend(CONFIG);
    const store = new MemoryResultStore();
    const events = await collect(runSweep(CONFIG, backend, store));
    const results = resultsOf(events);
    expect(results).toHaveLength(5 * 2 * 4);
    expect(results.every((r) => r.status === 'ok')).toBe(true);
    expect(events[0].type).toBe('plan');
    expect(events.at(-1)).toMatchObject({
      type: 'done',
      cancelled: false,
      progress: { done: 40, total: 40, resumed: 0, errors: 0 },
    });
    // Length-major, baseline first within each length.
    expect(results.slice(0, 4).every((r) => r.pointId === BASELINE_ID && r.length === 320)).toBe(
      true,
    );
    expect(results.slice(20, 24).every((r) => r.pointId === BASELINE_ID && r.length === 400)).toBe(
      true,
    );
    expect(backend.configured).toHaveLength(10);
    expect(store.all()).toHaveLength(40);
  });

  it('aggregates scores with n and the standard error, and errors against dense', async () => {
    const store = new MemoryResultStore();
    await collect(runSweep(CONFIG, new FakeBackend(CONFIG), store));
    const rows = aggregateResults(store.all());
    const row = rows.find((r) => r.pointId === 'prefill:block_sparse@0.5' && r.length === 320)!;
    // Scores 1, 0.5, 0.75, 0.25: mean 0.625, sample std sqrt(0.3125 / 3), SE std / 2.
    expect(row.n).toBe(4);
    expect(row.score.mean).toBeCloseTo(0.625, 12);
    expect(row.score.std).toBeCloseTo(Math.sqrt(0.3125 / 3), 12);
    expect(row.score.se).toBeCloseTo(Math.sqrt(0.3125 / 3) / 2, 12);
    expect(row.vsDense!.n).toBe(4);
    expect(row.vsDense!.absoluteError).toBeCloseTo(0.375, 12);
    expect(row.vsDense!.relativeError).toBeCloseTo(0.375, 12);
    expect(row.measuredSparsity.prefill.mean).toBeCloseTo(0.45, 12);
    expect(row.measuredSparsity.decode.mean).toBe(0);
    expect(row.recall!.mean).toBeCloseTo(0.775, 12);
    expect(row.recallKind).toBe('exact');
    const prompts = store
      .all()
      .filter((r) => r.pointId === row.pointId && r.length === 320)
      .map((r) => r.promptTokens);
    expect(row.recallQueries).toBe(prompts.reduce((a, b) => a + b, 0));
    const sampled = rows.find((r) => r.pointId === row.pointId && r.length === 400)!;
    expect(sampled).toMatchObject({ recallKind: 'sampled', recallQueries: 4 * 64 });
    const decodeAt = (length: number) =>
      rows.find((r) => r.pointId === 'decode:quest@0.5' && r.length === length)!;
    expect(decodeAt(320)).toMatchObject({ recallKind: 'exact', recallQueries: 4 });
    expect(decodeAt(400)).toMatchObject({ recall: null, recallKind: null, recallQueries: 0 });
    expect(
      store.all().find((r) => r.key === 'decode:quest@0.5|ruler_niah/400/0')!.recallUnavailable,
    ).toBe('fake: no kept set');
    const dense = rows.find((r) => r.pointId === BASELINE_ID && r.length === 320)!;
    expect(dense.vsDense).toBeNull();
    expect(dense).toMatchObject({ recall: null, recallKind: null });
    expect(dense.score).toMatchObject({ n: 4, mean: 1, std: 0, se: 0 });
    // Across lengths the same point has 8 samples.
    const across = aggregateResults(store.all(), { acrossLengths: true });
    const acrossRow = across.find((r) => r.pointId === 'prefill:block_sparse@0.5')!;
    expect(acrossRow.n).toBe(8);
    // One sampled sample makes the combined recall sampled.
    expect(acrossRow.recallKind).toBe('sampled');
  });

  it('compares next-token distributions where the method acts', async () => {
    const store = new MemoryResultStore();
    await collect(runSweep(CONFIG, new FakeBackend(CONFIG), store));
    const points = sweepPoints(CONFIG);
    const dense = points[0];
    for (const r of store.all()) {
      if (r.phase === 'baseline') {
        expect(r.vsDense).toBeNull();
        continue;
      }
      const point = points.find((p) => p.id === r.pointId)!;
      const position = r.phase === 'prefill' ? 'prompt' : 'first';
      const expected = klDivergence(
        logitsFor(dense, r.seed, position),
        logitsFor(point, r.seed, position),
      );
      expect(r.vsDense!.position).toBe(
        r.phase === 'prefill' ? 'after-prompt' : 'after-first-token',
      );
      expect(r.vsDense!.kl).toBeCloseTo(expected, 12);
      expect(r.vsDense!.kl).toBeGreaterThan(0);
    }
  });

  it('computes the cost model from the measured sparsity', async () => {
    const store = new MemoryResultStore();
    await collect(runSweep(CONFIG, new FakeBackend(CONFIG), store));
    const all = store.all();
    const dense = all.find((r) => r.key === 'dense|ruler_niah/320/0')!;
    const sparse = all.find((r) => r.key === 'prefill:block_sparse@0.9|ruler_niah/320/0')!;
    expect(dense.promptTokens).toBe(sparse.promptTokens);
    const L = dense.promptTokens;
    const { heads: h, headDim: dh, width: d, kvHeads } = MODEL;
    const projections = 2 * 2 * L * d * (2 * d + 2 * dh * kvHeads);
    const attentionDense = (2 * (4 * h * L * L * dh + 3 * h * L * L)) / 2;
    expect(dense.cost.prefillFlops).toBeCloseTo(projections + attentionDense, 0);
    expect(sparse.cost.prefillFlops).toBeCloseTo(projections + attentionDense * (1 - 0.81), 0);
    const decode = all.find((r) => r.key === 'decode:quest@0.5|ruler_niah/320/0')!;
    const kvBytes = 2 * 2 * L * dh * kvHeads * 4 * (1 - 0.45);
    const summaries = ((2 * 2 * dh * kvHeads * L) / 16) * 4;
    expect(decode.cost.decodeBytesPerToken).toBeCloseTo(kvBytes + summaries, 6);
  });

  it('counts failed samples, leaves them out of the means, and retries them on resume', async () => {
    const failOn = (point: SweepPoint, seed: number) =>
      point.id === 'prefill:block_sparse@0.5' && seed === 1;
    const store = new MemoryResultStore();
    const events = await collect(runSweep(CONFIG, new FakeBackend(CONFIG, { failOn }), store));
    const failed = resultsOf(events).filter((r) => r.status === 'error');
    expect(failed).toHaveLength(2);
    expect(failed[0].error).toBe('fake kernel failure');
    expect(events.at(-1)).toMatchObject({ progress: { done: 38, errors: 2 } });
    const row = aggregateResults(store.all()).find(
      (r) => r.pointId === 'prefill:block_sparse@0.5' && r.length === 320,
    )!;
    expect(row).toMatchObject({ n: 3, errors: 1 });
    expect(row.score.mean).toBeCloseTo((1 + 0.75 + 0.25) / 3, 12);

    const retry = new FakeBackend(CONFIG);
    const again = resultsOf(await collect(runSweep(CONFIG, retry, store)));
    expect(again.map((r) => r.key).sort()).toEqual(failed.map((r) => r.key).sort());
    expect(again.every((r) => r.status === 'ok' && r.vsDense !== null)).toBe(true);
  });

  it('turns a configuration that cannot load into failed samples and goes on', async () => {
    const failConfigure = (point: SweepPoint) => point.id === 'decode:quest@0.9';
    const store = new MemoryResultStore();
    await collect(runSweep(CONFIG, new FakeBackend(CONFIG, { failConfigure }), store));
    const failed = store.all().filter((r) => r.status === 'error');
    expect(failed).toHaveLength(8);
    expect(failed[0].error).toMatch(/cannot load the configuration: fake configure failure/);
    expect(store.all().filter((r) => r.status === 'ok')).toHaveLength(32);
  });

  it('stops at once when cancelled, keeps what finished, and resumes without redoing it', async () => {
    const full = new MemoryResultStore();
    await collect(runSweep(CONFIG, new FakeBackend(CONFIG), full));

    const controller = new AbortController();
    // Cancelled during the 7th run: that sample is dropped, the 6 before it are kept.
    const first = new FakeBackend(CONFIG, {
      beforeRun: (count) => count === 7 && controller.abort(),
    });
    const store = new MemoryResultStore();
    const events = await collect(runSweep(CONFIG, first, store, { signal: controller.signal }));
    expect(first.runs).toHaveLength(7);
    expect(store.all()).toHaveLength(6);
    expect(events.at(-1)).toMatchObject({ type: 'done', cancelled: true, progress: { done: 6 } });

    const second = new FakeBackend(CONFIG);
    const resumed = await collect(runSweep(CONFIG, second, store));
    expect(resumed[0]).toMatchObject({ type: 'plan', progress: { done: 6, resumed: 6 } });
    const redone = resultsOf(resumed).map((r) => r.key);
    const before = new Set(resultsOf(events).map((r) => r.key));
    expect(redone.some((key) => before.has(key))).toBe(false);
    expect(resumed.at(-1)).toMatchObject({ cancelled: false, progress: { done: 40, total: 40 } });
    // The 4 baseline samples of length 320 were stored; they run again for logits only.
    const references = resumed.filter((e) => e.type === 'reference');
    expect(references).toHaveLength(4);
    expect(second.runs).toHaveLength(40 - 6 + 4);

    const strip = (r: SampleResult) => ({ key: r.key, score: r.score, vsDense: r.vsDense });
    const byKey = (a: SampleResult, b: SampleResult) => a.key.localeCompare(b.key);
    expect(store.all().sort(byKey).map(strip)).toEqual(full.all().sort(byKey).map(strip));
  });

  it('does nothing more when everything is finished', async () => {
    const store = new MemoryResultStore();
    await collect(runSweep(CONFIG, new FakeBackend(CONFIG), store));
    const backend = new FakeBackend(CONFIG);
    const events = await collect(runSweep(CONFIG, backend, store));
    expect(events.map((e) => e.type)).toEqual(['plan', 'done']);
    expect(backend.configured).toHaveLength(0);
  });
});
