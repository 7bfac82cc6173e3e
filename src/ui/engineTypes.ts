/** What the run and sweep panels ask of the engine (engineBinding.ts implements it). */
import type {
  AttentionPair,
  SampleResult,
  PhaseMeasurement,
  SampleTimings,
  SweepConfig,
  SweepEvent,
} from '../engine/sweepTypes';

/** The prompt of a comparison run: a generated task sample, or the user's own text. */
export type PromptSpec =
  | { kind: 'task'; task: string; length: number; seed: number }
  | { kind: 'custom'; text: string; question: string };

export interface GenerationRequest {
  prompt: PromptSpec;
  attention: AttentionPair;
  maxNewTokens: number;
}

/** A streamed token: its id and its text as decoded in context. */
export interface StreamedToken {
  id: number;
  text: string;
}

export interface GenerationOutcome {
  ids: number[];
  text: string;
  promptTokens: number;
  /** The task's score in [0, 1]; null for the user's own text (no gold answer). */
  score: number | null;
  /** The gold answer of a task sample; null for the user's own text. */
  answer: string | null;
  measured: { prefill: PhaseMeasurement; decode: PhaseMeasurement };
  timings: SampleTimings;
}

export interface PlaygroundEngine {
  generate(
    request: GenerationRequest,
    onToken: (token: StreamedToken) => void,
    signal: AbortSignal,
  ): Promise<GenerationOutcome>;
  /** Runs a sweep; events come with the id its results are stored under (IndexedDB). */
  sweep(
    config: SweepConfig,
    onEvent: (event: SweepEvent, sweepId: string) => void,
    signal: AbortSignal,
  ): Promise<void>;
  /** Results a sweep stored in an earlier session (what a resumed sweep does not run again). */
  storedResults(sweepId: string): Promise<SampleResult[]>;
}
