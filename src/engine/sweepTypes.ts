/**
 * Types of the evaluation engine (sweeps): what a sweep is asked to run, what one sample of one
 * configuration produces, what the aggregates look like, the events a running sweep streams, and
 * the two seams that keep the orchestration (sweep.ts) free of GPU and storage code: the
 * `SweepBackend` (runs one configuration on one sample) and the `ResultStore` (remembers what is
 * finished, so a sweep can be resumed).
 *
 * The study's pairing rule (docs/METHODS.md): every configuration changes ONE phase. A prefill
 * method runs with dense decode, a decode method with dense prefill; the dense baseline (dense
 * prefill and dense decode) runs on the same samples, and every sparse result is compared with it
 * sample by sample.
 *
 * Everything here is plain data that survives structuredClone (worker messages, IndexedDB) and
 * JSON (the CLI's --out file). Values that can be undefined for a sample (a relative error when
 * the dense score is 0, a KL when the dense run failed) are `null`, never NaN, so JSON keeps them.
 * Aggregates (metrics.ts `Aggregate`) are recomputed from the per-sample results and may hold NaN
 * (n < 2 has no SE), which JSON writes as null.
 */
import type { Aggregate, RecallMode } from './metrics';
import type { MethodParams, Phase } from '../methods/types';

/**
 * Which phase a configuration makes sparse. 'baseline' is the dense reference: dense prefill and
 * dense decode.
 */
export type SweepPhase = Phase | 'baseline';

/** What a sweep runs: the grid, crossed in full, plus the dense baseline. */
export interface SweepConfig {
  /** Task names of src/tasks/registry.ts (e.g. 'ruler_niah'). */
  tasks: string[];
  /** Target prompt lengths in tokens (the task fills 90-100% of each). */
  lengths: number[];
  /** Samples per (task, length); sample i has seed `seed + i`. */
  samples: number;
  /** First sample seed (default 0). */
  seed?: number;
  /** Prefill methods (registry names); each runs with dense decode. */
  prefillMethods: string[];
  /** Decode methods (registry names); each runs with dense prefill. */
  decodeMethods: string[];
  /** Target sparsities in [0, 0.95]; each method's params come from `paramsForSparsity`. */
  sparsities: number[];
  /** Most tokens generated per sample (greedy decoding; stops early at an end-of-sequence token). */
  maxNewTokens: number;
  /**
   * Measure the attention recall of every sparse method at this layer (0-based): the share of the
   * dense softmax mass that what the method kept carries, from one extra run per sample with the
   * layer's queries captured. Prefill methods: exact over every query for prompts up to 2048
   * tokens, on a seeded sample of queries beyond; decode methods: the first decode step's query.
   * Absent: no recall.
   */
  recallLayer?: number;
}

/** One point of the grid: a method in one phase at one target sparsity, or the dense baseline. */
export interface SweepPoint {
  /** Stable id: 'dense', or `${phase}:${method}@${sparsity}` (e.g. 'prefill:block_sparse@0.5'). */
  id: string;
  phase: SweepPhase;
  /** Registry name of the sparse method ('dense' for the baseline). */
  method: string;
  /** Target sparsity (0 for the baseline). */
  sparsity: number;
}

/** One generated prompt of the sweep (the same for every point). */
export interface SweepSample {
  /** `${task}/${length}/${seed}`: pairs dense and sparse runs. */
  id: string;
  task: string;
  length: number;
  seed: number;
}

/** A method with its parameters as the model runtime takes them. */
export interface AttentionChoice {
  name: string;
  params: MethodParams;
}

/** The two per-phase choices a configuration runs with. */
export interface AttentionPair {
  prefill: AttentionChoice;
  decode: AttentionChoice;
}

/** Measured sparsity of one layer in one phase, as the kernels counted it. */
export interface LayerMeasurement {
  layer: number;
  method: string;
  /** 'blocks', 'pages' or 'tokens' (dense). */
  unit: string;
  touched: number;
  total: number;
  /** 1 - touched / total (0 when nothing was counted). */
  sparsity: number;
  /**
   * The same per head where the kernels count per head (query heads for block counts, KV heads
   * for pages and tokens); absent where they do not.
   */
  perHead?: number[];
}

/** Measured sparsity of one phase: over all layers (touched / total summed) and per layer. */
export interface PhaseMeasurement {
  sparsity: number;
  touched: number;
  total: number;
  layers: LayerMeasurement[];
  /**
   * CPU milliseconds the phase spent building masks (CPU planners; GPU planners take none);
   * absent where the backend does not time planning.
   */
  plannerMs?: number;
  /**
   * GPU milliseconds of the phase's planner dispatches (Block-Sparse, Vertical-Slash, FlexPrefill;
   * timestamp queries); absent where the backend does not time them.
   */
  plannerGpuMs?: number;
}

/** The cost model of docs/METHODS.md (costModel.ts), over all layers. */
export interface SampleCost {
  /** Prefill FLOPs (attention over the causal triangle + projections + method overhead). */
  prefillFlops: number;
  /** KV bytes read per decode step at the prompt length (+ the method's own overhead). */
  decodeBytesPerToken: number;
  /** The sparsities the two figures above were computed with: the measured ones. */
  prefillSparsity: number;
  decodeSparsity: number;
}

/** GPU time of the sample (timestamp queries when the device has them, else wall-clock). */
export interface SampleTimings {
  source: 'timestamp-query' | 'wall-clock';
  prefillMs: number;
  prefillTokens: number;
  decodeMs: number;
  decodeTokens: number;
}

/** This sample against the dense baseline's run on the same sample. */
export interface DenseDelta {
  /** dense score - this score (positive = worse than dense). */
  absoluteError: number;
  /** (dense - this) / dense; null when the dense score is 0 and this one is not. */
  relativeError: number | null;
  /**
   * KL(dense || this) of the next-token distribution, in nats; null when either run has no
   * logits at `position` (generation stopped at its first token, or the baseline failed).
   */
  kl: number | null;
  /** Whether the greedy next token equals dense's; null when `kl` is. */
  top1Agree: boolean | null;
  /**
   * Where the next-token distributions were compared: after the prompt for the baseline and
   * prefill methods; after the first generated token (the same token in both runs, since the
   * prefill is dense) for decode methods, so that the decode method has acted.
   */
  position: 'after-prompt' | 'after-first-token';
}

/** The result of one point on one sample. */
export interface SampleResult {
  /** `${pointId}|${sampleId}`: what the store remembers as finished. */
  key: string;
  pointId: string;
  phase: SweepPhase;
  method: string;
  sparsity: number;
  sampleId: string;
  task: string;
  length: number;
  seed: number;
  status: 'ok' | 'error';
  /** Why the run failed (status 'error'); the sample is counted in `errors`, never averaged. */
  error?: string;
  /** The parameters the configuration ran with (from paramsForSparsity at this length). */
  attention: AttentionPair;
  promptTokens: number;
  generatedTokens: number;
  output: string;
  /** The task's score in [0, 1]. */
  score: number;
  /**
   * Against the baseline on this sample; null for the baseline itself, for failed samples, and
   * when the baseline's run on this sample failed.
   */
  vsDense: DenseDelta | null;
  measured: { prefill: PhaseMeasurement; decode: PhaseMeasurement };
  /**
   * Attention recall of the method at the config's recallLayer (mean over the measured queries
   * and heads); null for the baseline, without recallLayer, and where `recallUnavailable` says.
   */
  recall: number | null;
  /**
   * How `recall` was measured: over every query ('exact') or a sample of them; null with it.
   * The three recall fields below are absent in results stored before they existed, whose recalls
   * were exact over the prompt's queries.
   */
  recallKind?: RecallMode | null;
  /** Queries `recall` was measured on (the prompt, the sample, or 1 decode query); 0 with null. */
  recallQueries?: number;
  /** Why a recall that was asked for is null (the method exposes no kept set); null otherwise. */
  recallUnavailable?: string | null;
  cost: SampleCost;
  timings: SampleTimings;
  /** Wall milliseconds of the whole sample (generation, reads, scoring). */
  wallMs: number;
}

/** Aggregates of one point on one (task, length), over its successful samples. */
export interface PointAggregate {
  pointId: string;
  phase: SweepPhase;
  method: string;
  sparsity: number;
  /** null: aggregated over all tasks. */
  task: string | null;
  /** null: aggregated over all lengths. */
  length: number | null;
  /** Samples that finished with status 'ok' (= score.n). */
  n: number;
  /** Samples that failed (left out of every aggregate). */
  errors: number;
  score: Aggregate;
  /** Against dense on the paired samples (null for the baseline). */
  vsDense: {
    n: number;
    absoluteError: number;
    /** NaN when the dense mean is 0 and this one is not. */
    relativeError: number;
    relativeErrorSe: number;
    /** Per-sample (this - dense) scores. */
    pairedDifference: Aggregate;
    kl: Aggregate;
    /** Mean of 0/1 agreements = the agreement rate. */
    top1Agreement: Aggregate;
  } | null;
  measuredSparsity: { prefill: Aggregate; decode: Aggregate };
  /** Over the samples' recalls; null when no sample has one. */
  recall: Aggregate | null;
  /** 'exact' when every sample's recall is, 'sampled' when any is; null with `recall`. */
  recallKind: RecallMode | null;
  /** Queries measured, summed over the samples with a recall. */
  recallQueries: number;
  prefillFlops: Aggregate;
  decodeBytesPerToken: Aggregate;
  prefillMs: Aggregate;
  /** Decode GPU milliseconds per generated token. */
  decodeMsPerToken: Aggregate;
}

/** Progress counts: `done` includes results finished in an earlier (resumed) session. */
export interface SweepProgress {
  done: number;
  total: number;
  /** Of `done`, how many were found in the store at the start. */
  resumed: number;
  errors: number;
}

/** What a running sweep streams, in order. */
export type SweepEvent =
  | {
      type: 'plan';
      points: SweepPoint[];
      samples: SweepSample[];
      progress: SweepProgress;
    }
  /** A point starts on one length (the backend loads the configuration). */
  | { type: 'point'; point: SweepPoint; length: number; attention: AttentionPair }
  /**
   * The baseline is run again on samples whose stored result has no logits in memory (after a
   * resume), only to compare next-token distributions; nothing is stored.
   */
  | { type: 'reference'; sampleId: string }
  | { type: 'result'; result: SampleResult; progress: SweepProgress }
  | { type: 'done'; cancelled: boolean; progress: SweepProgress };

/** Next-token logits a backend run hands back (float32, [vocab]). */
export interface RunLogits {
  /** After the whole prompt. */
  afterPrompt: Float32Array;
  /** After the first generated token; null when generation stopped at the first token. */
  afterFirstToken: Float32Array | null;
}

/** An attention recall as the backend measured it. */
export interface RecallMeasurement {
  /** Mean over the measured queries and heads. */
  recall: number;
  kind: RecallMode;
  queries: number;
}

/** What the backend returns for one sample under one configuration. */
export interface BackendRun {
  outputIds: number[];
  output: string;
  logits: RunLogits;
  measured: { prefill: PhaseMeasurement; decode: PhaseMeasurement };
  /** null without recallLayer, for dense, or when the method exposes nothing (`recallUnavailable`). */
  recall: RecallMeasurement | null;
  /** Why no recall was measured although one was asked for; absent otherwise. */
  recallUnavailable?: string;
  timings: SampleTimings;
}

/** The model shape the sweep needs (cost model and paramsForSparsity). */
export interface SweepModelInfo {
  name: string;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  width: number;
  vocabSize: number;
  /** Longest sequence the model takes (prompt + generated tokens). */
  maxPositions: number;
  /** Bytes per K/V element in the cache (4 for f32, 2 for f16). */
  kvBytes: number;
}

/** One configuration loaded on the backend (a model with these attention methods). */
export interface ConfiguredRunner {
  run(
    promptIds: readonly number[],
    options: { maxNewTokens: number; signal?: AbortSignal },
  ): Promise<BackendRun>;
  dispose(): void;
}

/** Runs configurations; the real one is modelBackend.ts, tests use fakes. */
export interface SweepBackend {
  readonly model: SweepModelInfo;
  /** Counts tokens as the model sees them (the tasks fill their prompts with it). */
  countTokens(text: string): number;
  /** The ids of a task prompt as the model is fed it (chat template where the backend uses one). */
  encodePrompt(prompt: string, chatMessages: { role: string; content: string }[]): number[];
  /**
   * Loads one configuration for sequences up to maxSeqLen tokens; with recallLayer, its runs
   * measure the sparse method's attention recall at that layer where they can.
   */
  configure(
    attention: AttentionPair,
    maxSeqLen: number,
    options?: { recallLayer?: number },
  ): Promise<ConfiguredRunner>;
}

/** Where finished results live (IndexedDB, a JSON file, memory). */
export interface ResultStore {
  /** Every stored result (to skip finished keys and to aggregate). */
  load(): Promise<SampleResult[]>;
  /** Persists one result as soon as it is produced. */
  put(result: SampleResult): Promise<void>;
}
