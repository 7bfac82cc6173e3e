/**
 * The evaluation engine's orchestration, with no GPU and no storage of its own: a sweep config
 * becomes points (methods x sparsities, plus the dense baseline) and samples (tasks x lengths x
 * seeds); `runSweep` runs every unfinished (point, sample) pair through a `SweepBackend`, stores
 * each result in a `ResultStore` as soon as it exists and streams it as an event;
 * `aggregateResults` turns results into per-point aggregates with n and standard errors
 * (metrics.ts).
 *
 * Order: length, then point (baseline first), then task and sample. A configuration is loaded once
 * per length (a model upload on the GPU backend), and the baseline's next-token logits of one
 * length are held in memory while that length's sparse points are compared with them.
 *
 * Resume: results found in the store with status 'ok' are not run again; failed ones are retried.
 * When a sparse point still has to run on a sample whose baseline result came from the store, the
 * baseline is run again on that sample for its logits only (a 'reference' event; nothing stored).
 *
 * Cancel: the AbortSignal is checked between samples and handed to the backend, which stops
 * generating at the next token; the interrupted sample is dropped, everything finished is kept.
 */
import { decodeCost, prefillCost, type ModelShape, type PrefillOverhead } from './costModel';
import {
  aggregate,
  compareNextToken,
  compareToDense,
  relativeError,
  absoluteError,
} from './metrics';
import { getMethod } from '../methods/registry';
import { checkSparsity, type MethodShape, type Phase } from '../methods/types';
import { getTask } from '../tasks/registry';
import type { TaskSample } from '../tasks/types';
import type {
  AttentionChoice,
  AttentionPair,
  BackendRun,
  DenseDelta,
  PhaseMeasurement,
  PointAggregate,
  ResultStore,
  RunLogits,
  SampleResult,
  SweepBackend,
  SweepConfig,
  SweepEvent,
  SweepModelInfo,
  SweepPoint,
  SweepProgress,
  SweepSample,
} from './sweepTypes';

export const BASELINE_ID = 'dense';

const DENSE: AttentionChoice = { name: 'dense', params: {} };

export function pointId(phase: Phase, method: string, sparsity: number): string {
  return `${phase}:${method}@${sparsity}`;
}

export function sampleId(task: string, length: number, seed: number): string {
  return `${task}/${length}/${seed}`;
}

export function resultKey(point: string, sample: string): string {
  return `${point}|${sample}`;
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (error instanceof Error && error.name === 'AbortError');
}

function listError(what: string, message: string): Error {
  return new Error(`sweep config: ${what}: ${message}`);
}

/**
 * Checks a config against the registries and the model; throws saying what is wrong and what to
 * do. Returns the config with duplicates removed and the seed filled in.
 */
export function validateSweepConfig(
  config: SweepConfig,
  model: SweepModelInfo,
): SweepConfig & { seed: number } {
  const unique = <T>(values: readonly T[]) => [...new Set(values)];
  const { samples, maxNewTokens } = config;
  const seed = config.seed ?? 0;
  if (config.tasks.length === 0) throw listError('tasks', 'name at least one task');
  for (const task of config.tasks) getTask(task);
  if (config.lengths.length === 0) throw listError('lengths', 'give at least one length');
  for (const length of config.lengths) {
    if (!Number.isInteger(length) || length <= 0) {
      throw listError('lengths', `${length} is not a positive whole number of tokens`);
    }
    if (length + maxNewTokens > model.maxPositions) {
      throw listError(
        'lengths',
        `${length} prompt tokens + ${maxNewTokens} new tokens exceed the ${model.maxPositions} ` +
          `positions of ${model.name}; use lengths up to ${model.maxPositions - maxNewTokens}`,
      );
    }
  }
  if (!Number.isInteger(samples) || samples <= 0) {
    throw listError('samples', `${samples} is not a positive whole number`);
  }
  if (!Number.isInteger(seed) || seed < 0)
    throw listError('seed', `${seed} is not an integer >= 0`);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens <= 0) {
    throw listError('maxNewTokens', `${maxNewTokens} is not a positive whole number`);
  }
  const checkMethods = (phase: Phase, names: readonly string[]) => {
    for (const name of names) {
      const method = getMethod(name);
      if (!method.phases.includes(phase)) {
        throw listError(
          `${phase} methods`,
          `${name} is not a ${phase} method (it applies to ${method.phases.join(' and ')})`,
        );
      }
      if (name === 'dense') {
        throw listError(`${phase} methods`, 'dense is the baseline and always runs; leave it out');
      }
    }
  };
  checkMethods('prefill', config.prefillMethods);
  checkMethods('decode', config.decodeMethods);
  if (config.prefillMethods.length + config.decodeMethods.length > 0) {
    if (config.sparsities.length === 0) throw listError('sparsities', 'give at least one');
  }
  for (const s of config.sparsities) {
    try {
      checkSparsity(s);
    } catch (error) {
      throw listError('sparsities', (error as Error).message);
    }
  }
  const { recallLayer } = config;
  if (
    recallLayer !== undefined &&
    !(Number.isInteger(recallLayer) && recallLayer >= 0 && recallLayer < model.layers)
  ) {
    throw listError(
      'recallLayer',
      `${recallLayer} is not a layer of ${model.name} (0 to ${model.layers - 1})`,
    );
  }
  return {
    tasks: unique(config.tasks),
    lengths: unique(config.lengths),
    samples,
    seed,
    prefillMethods: unique(config.prefillMethods),
    decodeMethods: unique(config.decodeMethods),
    sparsities: unique(config.sparsities),
    maxNewTokens,
    ...(recallLayer === undefined ? {} : { recallLayer }),
  };
}

/** The points of a config: the baseline, then prefill methods, then decode methods. */
export function sweepPoints(config: SweepConfig): SweepPoint[] {
  const points: SweepPoint[] = [
    { id: BASELINE_ID, phase: 'baseline', method: 'dense', sparsity: 0 },
  ];
  for (const [phase, methods] of [
    ['prefill', config.prefillMethods],
    ['decode', config.decodeMethods],
  ] as const) {
    for (const method of methods) {
      for (const sparsity of config.sparsities) {
        points.push({ id: pointId(phase, method, sparsity), phase, method, sparsity });
      }
    }
  }
  return points;
}

/** The samples of a config, by length, then task, then seed. */
export function sweepSamples(config: SweepConfig): SweepSample[] {
  const samples: SweepSample[] = [];
  const seed = config.seed ?? 0;
  for (const length of config.lengths) {
    for (const task of config.tasks) {
      for (let i = 0; i < config.samples; i++) {
        samples.push({ id: sampleId(task, length, seed + i), task, length, seed: seed + i });
      }
    }
  }
  return samples;
}

/**
 * Identifies what a stored result depends on besides its key: the model, the generation length
 * and the layer whose recall it measured. A store opened for another fingerprint must not be
 * resumed from (results without recall would otherwise stand in for ones asked with it).
 */
export function sweepFingerprint(config: SweepConfig, model: SweepModelInfo): string {
  const recall = config.recallLayer === undefined ? '' : `|recallLayer=${config.recallLayer}`;
  return `${model.name}|maxNewTokens=${config.maxNewTokens}${recall}`;
}

/**
 * The attention a point runs with at a length: the method's paramsForSparsity for the target
 * sparsity on that length's shape (prefill: the whole prompt; decode: one query against the
 * prompt's cache), dense in the other phase.
 */
export function attentionFor(
  point: SweepPoint,
  length: number,
  model: SweepModelInfo,
): AttentionPair {
  if (point.phase === 'baseline') return { prefill: DENSE, decode: DENSE };
  const shape: MethodShape = {
    numHeads: model.heads,
    numKvHeads: model.kvHeads,
    headDim: model.headDim,
    numQueries: point.phase === 'prefill' ? length : 1,
    qStart: point.phase === 'prefill' ? 0 : length - 1,
  };
  const choice: AttentionChoice = {
    name: point.method,
    params: getMethod(point.method).paramsForSparsity(point.sparsity, shape),
  };
  return point.phase === 'prefill'
    ? { prefill: choice, decode: DENSE }
    : { prefill: DENSE, decode: choice };
}

function modelShape(model: SweepModelInfo): ModelShape {
  return {
    layers: model.layers,
    heads: model.heads,
    kvHeads: model.kvHeads,
    headDim: model.headDim,
    width: model.width,
  };
}

function numericParam(choice: AttentionChoice, key: string): number | null {
  const value = choice.params[key];
  return typeof value === 'number' ? value : null;
}

/**
 * The cost model of METHODS.md at the sample's prompt length and MEASURED sparsities. Prefill
 * attention is counted over the causal triangle (the kernels count causal blocks); Vertical-Slash
 * and FlexPrefill add their estimation pass, Quest its page summaries.
 */
export function sampleCost(
  model: SweepModelInfo,
  attention: AttentionPair,
  promptTokens: number,
  measured: { prefill: PhaseMeasurement; decode: PhaseMeasurement },
): SampleResult['cost'] {
  const shape = modelShape(model);
  let overhead: PrefillOverhead = { kind: 'none' };
  const lastQ =
    attention.prefill.name === 'vertical_slash'
      ? numericParam(attention.prefill, 'lastQ')
      : attention.prefill.name === 'flexprefill'
        ? numericParam(attention.prefill, 'approximationSize')
        : null;
  if (lastQ !== null) overhead = { kind: 'estimation', lastQ };
  const pageSize =
    attention.decode.name === 'quest' ? numericParam(attention.decode, 'pageSize') : null;
  const prefill = prefillCost(shape, promptTokens, measured.prefill.sparsity, {
    region: 'causal',
    overhead,
  });
  const decode = decodeCost(
    shape,
    promptTokens,
    measured.decode.sparsity,
    model.kvBytes,
    pageSize !== null ? { kind: 'quest', pageSize } : { kind: 'none' },
  );
  return {
    prefillFlops: prefill.total,
    decodeBytesPerToken: decode.total,
    prefillSparsity: measured.prefill.sparsity,
    decodeSparsity: measured.decode.sparsity,
  };
}

const emptyMeasurement = (): PhaseMeasurement => ({
  sparsity: 0,
  touched: 0,
  total: 0,
  layers: [],
  plannerMs: 0,
  plannerGpuMs: 0,
});

/** What a sample of a point produced, before it is compared with the baseline. */
interface Prepared {
  sample: SweepSample;
  task: TaskSample;
  ids: number[];
}

function comparePosition(point: SweepPoint): DenseDelta['position'] {
  return point.phase === 'decode' ? 'after-first-token' : 'after-prompt';
}

function logitsAt(logits: RunLogits, position: DenseDelta['position']): Float32Array | null {
  return position === 'after-prompt' ? logits.afterPrompt : logits.afterFirstToken;
}

function denseDelta(
  point: SweepPoint,
  score: number,
  logits: RunLogits,
  dense: { score: number; logits: RunLogits | null },
): DenseDelta {
  const position = comparePosition(point);
  const mine = logitsAt(logits, position);
  const theirs = dense.logits ? logitsAt(dense.logits, position) : null;
  const next = mine && theirs ? compareNextToken(theirs, mine) : null;
  const relative = relativeError(dense.score, score);
  return {
    absoluteError: absoluteError(dense.score, score),
    relativeError: Number.isNaN(relative) ? null : relative,
    kl: next ? next.kl : null,
    top1Agree: next ? next.top1Agree : null,
    position,
  };
}

export interface RunSweepOptions {
  signal?: AbortSignal;
}

/**
 * Runs a sweep; yields a 'plan' event, then 'point', 'reference' and 'result' events as they
 * happen, and a final 'done' (cancelled or not). Throws on an invalid config (before any run) and
 * when the backend or the store fails outside a single sample.
 */
export async function* runSweep(
  input: SweepConfig,
  backend: SweepBackend,
  store: ResultStore,
  options: RunSweepOptions = {},
): AsyncGenerator<SweepEvent> {
  const { signal } = options;
  const model = backend.model;
  const config = validateSweepConfig(input, model);
  const points = sweepPoints(config);
  const samples = sweepSamples(config);

  const finished = new Map<string, SampleResult>();
  for (const result of await store.load()) {
    if (result.status === 'ok') finished.set(result.key, result);
  }
  const progress: SweepProgress = {
    done: 0,
    total: points.length * samples.length,
    resumed: 0,
    errors: 0,
  };
  for (const point of points) {
    for (const sample of samples) {
      if (finished.has(resultKey(point.id, sample.id))) progress.done++;
    }
  }
  progress.resumed = progress.done;
  yield { type: 'plan', points, samples, progress: { ...progress } };

  // Generated up front: a task that cannot fit a length fails the sweep before any GPU work.
  const tokenizer = { count: (text: string) => backend.countTokens(text) };
  const prepared: Prepared[] = samples.map((sample) => {
    let task: TaskSample;
    try {
      task = getTask(sample.task).generate({
        seed: sample.seed,
        targetTokens: sample.length,
        tokenizer,
      });
    } catch (error) {
      throw new Error(
        `cannot build sample ${sample.id}: ${(error as Error).message} with this model's ` +
          'tokenizer; choose a longer length',
        { cause: error },
      );
    }
    return { sample, task, ids: backend.encodePrompt(task.prompt, task.chatMessages) };
  });

  // The cache each length needs; a prompt (chat template included) that cannot fit fails now.
  const maxSeqLens = new Map<number, number>();
  for (const length of config.lengths) {
    const longest = Math.max(
      ...prepared.filter((p) => p.sample.length === length).map((p) => p.ids.length),
    );
    const maxSeqLen = longest + config.maxNewTokens;
    if (maxSeqLen > model.maxPositions) {
      throw new Error(
        `length ${length}: the longest prompt is ${longest} tokens; with ${config.maxNewTokens} ` +
          `new tokens it exceeds the ${model.maxPositions} positions of ${model.name}. ` +
          'Use a shorter length or fewer new tokens.',
      );
    }
    maxSeqLens.set(length, maxSeqLen);
  }

  let cancelled = false;
  for (const length of config.lengths) {
    if (cancelled) break;
    const atLength = prepared.filter((p) => p.sample.length === length);
    const maxSeqLen = maxSeqLens.get(length)!;
    const pending = (point: SweepPoint, p: Prepared) =>
      !finished.has(resultKey(point.id, p.sample.id));
    // The baseline's score and logits per sample, for the comparisons of this length.
    const dense = new Map<string, { score: number; logits: RunLogits | null }>();
    for (const p of atLength) {
      const stored = finished.get(resultKey(BASELINE_ID, p.sample.id));
      if (stored) dense.set(p.sample.id, { score: stored.score, logits: null });
    }
    const needsReference = (p: Prepared) =>
      points.some((point) => point.phase !== 'baseline' && pending(point, p));

    for (const point of points) {
      if (cancelled) break;
      const isBaseline = point.phase === 'baseline';
      const todo = atLength.filter(
        (p) => pending(point, p) || (isBaseline && dense.has(p.sample.id) && needsReference(p)),
      );
      if (todo.length === 0) continue;
      let attention: AttentionPair;
      let configureError: string | null = null;
      try {
        attention = attentionFor(point, length, model);
      } catch (error) {
        // Recorded with the method's name and no params: every sample of the point fails with it.
        const choice = { name: point.method, params: {} };
        attention =
          point.phase === 'decode'
            ? { prefill: DENSE, decode: choice }
            : { prefill: choice, decode: DENSE };
        configureError = `cannot choose parameters for sparsity ${point.sparsity}: ${(error as Error).message}`;
      }
      yield { type: 'point', point, length, attention };
      let runner: Awaited<ReturnType<SweepBackend['configure']>> | null = null;
      if (configureError === null) {
        try {
          runner = await backend.configure(attention, maxSeqLen, {
            recallLayer: config.recallLayer,
          });
        } catch (error) {
          configureError = `cannot load the configuration: ${(error as Error).message}`;
        }
      }
      try {
        for (const p of todo) {
          if (signal?.aborted) {
            cancelled = true;
            break;
          }
          const key = resultKey(point.id, p.sample.id);
          const referenceOnly = !pending(point, p);
          if (referenceOnly) yield { type: 'reference', sampleId: p.sample.id };
          const started = performance.now();
          let run: BackendRun | null = null;
          let failure = configureError;
          if (runner) {
            try {
              run = await runner.run(p.ids, { maxNewTokens: config.maxNewTokens, signal });
            } catch (error) {
              if (isAbort(error, signal)) {
                cancelled = true;
                break;
              }
              failure = (error as Error).message;
            }
          }
          if (referenceOnly) {
            const entry = dense.get(p.sample.id)!;
            if (run) entry.logits = run.logits;
            continue;
          }
          let result: SampleResult;
          try {
            if (!run) throw new Error(failure ?? 'the backend returned nothing');
            result = scoreRun(point, p, attention, run, model, dense.get(p.sample.id) ?? null);
          } catch (error) {
            result = failedResult(point, p, attention, (error as Error).message);
          }
          result.wallMs = performance.now() - started;
          if (isBaseline && result.status === 'ok') {
            dense.set(p.sample.id, { score: result.score, logits: run!.logits });
          }
          await store.put(result);
          if (result.status === 'ok') {
            finished.set(key, result);
            progress.done++;
          } else {
            progress.errors++;
          }
          yield { type: 'result', result, progress: { ...progress } };
        }
      } finally {
        runner?.dispose();
      }
    }
  }
  yield { type: 'done', cancelled, progress: { ...progress } };
}

function baseResult(
  point: SweepPoint,
  p: Prepared,
  attention: AttentionPair,
): Omit<SampleResult, 'status'> {
  return {
    key: resultKey(point.id, p.sample.id),
    pointId: point.id,
    phase: point.phase,
    method: point.method,
    sparsity: point.sparsity,
    sampleId: p.sample.id,
    task: p.sample.task,
    length: p.sample.length,
    seed: p.sample.seed,
    attention,
    promptTokens: p.ids.length,
    generatedTokens: 0,
    output: '',
    score: 0,
    vsDense: null,
    measured: { prefill: emptyMeasurement(), decode: emptyMeasurement() },
    recall: null,
    recallKind: null,
    recallQueries: 0,
    recallUnavailable: null,
    cost: { prefillFlops: 0, decodeBytesPerToken: 0, prefillSparsity: 0, decodeSparsity: 0 },
    timings: { source: 'wall-clock', prefillMs: 0, prefillTokens: 0, decodeMs: 0, decodeTokens: 0 },
    wallMs: 0,
  };
}

function failedResult(
  point: SweepPoint,
  p: Prepared,
  attention: AttentionPair,
  error: string,
): SampleResult {
  return { ...baseResult(point, p, attention), status: 'error', error };
}

function scoreRun(
  point: SweepPoint,
  p: Prepared,
  attention: AttentionPair,
  run: BackendRun,
  model: SweepModelInfo,
  dense: { score: number; logits: RunLogits | null } | null,
): SampleResult {
  const score = getTask(p.sample.task).score(p.task, run.output);
  if (!(score >= 0 && score <= 1)) {
    throw new Error(`task ${p.sample.task} scored ${score}, outside [0, 1]`);
  }
  return {
    ...baseResult(point, p, attention),
    status: 'ok',
    generatedTokens: run.outputIds.length,
    output: run.output,
    score,
    vsDense:
      point.phase === 'baseline' || !dense ? null : denseDelta(point, score, run.logits, dense),
    measured: run.measured,
    recall: run.recall?.recall ?? null,
    recallKind: run.recall?.kind ?? null,
    recallQueries: run.recall?.queries ?? 0,
    recallUnavailable: run.recallUnavailable ?? null,
    cost: sampleCost(model, attention, p.ids.length, run.measured),
    timings: run.timings,
  };
}

// ---------------------------------------------------------------------------------------------
// Aggregation

export interface AggregateOptions {
  /** Aggregate over all tasks (task null in the output) instead of per task. */
  acrossTasks?: boolean;
  /** Aggregate over all lengths (length null) instead of per length. */
  acrossLengths?: boolean;
}

/**
 * Per-point aggregates of results (the latest result per key wins), grouped by point and, unless
 * told otherwise, by task and length. Failed samples are counted in `errors` and left out of
 * every mean; dense comparisons pair samples by id with the baseline results of the same group.
 */
export function aggregateResults(
  results: readonly SampleResult[],
  options: AggregateOptions = {},
): PointAggregate[] {
  const latest = new Map<string, SampleResult>();
  for (const r of results) latest.set(r.key, r);
  const groupTask = (r: SampleResult) => (options.acrossTasks ? null : r.task);
  const groupLength = (r: SampleResult) => (options.acrossLengths ? null : r.length);
  const groups = new Map<string, SampleResult[]>();
  for (const r of latest.values()) {
    const id = JSON.stringify([r.pointId, groupTask(r), groupLength(r)]);
    const list = groups.get(id);
    if (list) list.push(r);
    else groups.set(id, [r]);
  }
  const rows: PointAggregate[] = [];
  for (const [id, group] of groups) {
    const [, task, length] = JSON.parse(id) as [string, string | null, number | null];
    const ok = group.filter((r) => r.status === 'ok');
    const first = group[0];
    const of = (pick: (r: SampleResult) => number) => aggregate(ok.map(pick));
    const baselineId = JSON.stringify([BASELINE_ID, task, length]);
    const baseline = (groups.get(baselineId) ?? []).filter((r) => r.status === 'ok');
    let vsDense: PointAggregate['vsDense'] = null;
    if (first.phase !== 'baseline') {
      const comparison = compareToDense(
        baseline.map((r) => ({ sampleId: r.sampleId, value: r.score })),
        ok.map((r) => ({ sampleId: r.sampleId, value: r.score })),
      );
      const deltas = ok.flatMap((r) => (r.vsDense ? [r.vsDense] : []));
      vsDense = {
        n: comparison.n,
        absoluteError: comparison.absoluteError,
        relativeError: comparison.relativeError,
        relativeErrorSe: comparison.relativeErrorSe,
        pairedDifference: comparison.pairedDifference,
        kl: aggregate(deltas.flatMap((d) => (d.kl === null ? [] : [d.kl]))),
        top1Agreement: aggregate(
          deltas.flatMap((d) => (d.top1Agree === null ? [] : [d.top1Agree ? 1 : 0])),
        ),
      };
    }
    const withRecall = ok.filter((r) => r.recall !== null);
    // Results stored before recallKind existed were measured over every query of the prompt.
    const kindOf = (r: SampleResult) => r.recallKind ?? 'exact';
    const queriesOf = (r: SampleResult) => r.recallQueries ?? r.promptTokens;
    rows.push({
      pointId: first.pointId,
      phase: first.phase,
      method: first.method,
      sparsity: first.sparsity,
      task,
      length,
      n: ok.length,
      errors: group.length - ok.length,
      score: of((r) => r.score),
      vsDense,
      measuredSparsity: {
        prefill: of((r) => r.measured.prefill.sparsity),
        decode: of((r) => r.measured.decode.sparsity),
      },
      recall: withRecall.length > 0 ? aggregate(withRecall.map((r) => r.recall!)) : null,
      recallKind:
        withRecall.length === 0
          ? null
          : withRecall.every((r) => kindOf(r) === 'exact')
            ? 'exact'
            : 'sampled',
      recallQueries: withRecall.reduce((sum, r) => sum + queriesOf(r), 0),
      prefillFlops: of((r) => r.cost.prefillFlops),
      decodeBytesPerToken: of((r) => r.cost.decodeBytesPerToken),
      prefillMs: of((r) => r.timings.prefillMs),
      decodeMsPerToken: aggregate(
        ok
          .filter((r) => r.timings.decodeTokens > 0)
          .map((r) => r.timings.decodeMs / r.timings.decodeTokens),
      ),
    });
  }
  return rows;
}
