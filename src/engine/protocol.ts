/**
 * The typed messages between the page (client.ts) and the engine's Web Worker (worker.ts).
 *
 * Every request carries an `id` chosen by the client; every reply names the request it answers.
 * A request ends with exactly one 'done' or 'error' reply; before that it may stream: load
 * progress, sweep events, generated tokens. `cancel` names the request to stop: a sweep stops after
 * the current token (finished results stay in IndexedDB), a generation stops at the next token, a
 * model load aborts its downloads.
 *
 * The model lives in the worker: `loadModel` replaces it; `startSweep` and `generate` use it.
 */
import type { KvDtype } from '../kernels/layout';
import type { WeightDtype } from '../kernels/model/common';
import type { LoadProgress, ModelPlan, ModelSource } from '../model/loading/sources';
import type { PromptAttentionMap } from '../model/runtime/attentionMap';
import type { AttentionStats, GenerateResult, Timings } from '../model/runtime/model';
import type { AttentionPair, SweepConfig, SweepEvent, SweepModelInfo } from './sweepTypes';

/** Whether prompts go through the checkpoint's chat template ('auto': when it has one). */
export type ChatMode = 'auto' | 'on' | 'off';

export interface LoadModelRequest {
  type: 'loadModel';
  id: number;
  source: ModelSource;
  weightDtype?: WeightDtype;
  kvDtype?: KvDtype;
  chat?: ChatMode;
}

export interface StartSweepRequest {
  type: 'startSweep';
  id: number;
  config: SweepConfig;
}

/** A prompt as text (tokenized in the worker, through the chat template when on) or as ids. */
export type GeneratePrompt = { text: string } | { ids: number[] };

export interface GenerateRequest {
  type: 'generate';
  id: number;
  prompt: GeneratePrompt;
  attention: AttentionPair;
  maxNewTokens: number;
  /** 0 (default): greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

export interface CancelRequest {
  type: 'cancel';
  /** The request to stop. */
  id: number;
}

/**
 * The attention map of one layer for a prompt, run from position 0 with `attention`; a prefill
 * method other than dense also gives what it keeps (src/model/runtime/attentionMap.ts).
 */
export interface AttentionMapRequest {
  type: 'attentionMap';
  id: number;
  prompt: GeneratePrompt;
  attention: AttentionPair;
  layer: number;
  /** Rows and keys per cell; chosen from the prompt length and heads when absent. */
  blockSize?: number;
}

export interface AttentionMapReply {
  map: PromptAttentionMap;
  /** Each prompt token's text, by position. */
  tokens: string[];
  /** Measured sparsity per phase and layer of the run, as the kernels counted it. */
  stats: AttentionStats;
}

export type WorkerRequest =
  LoadModelRequest | StartSweepRequest | GenerateRequest | AttentionMapRequest | CancelRequest;

/** What the page learns of the loaded model. */
export interface LoadedModelInfo {
  model: SweepModelInfo;
  /** Whether prompts go through the chat template (from the request's ChatMode). */
  chat: boolean;
  /** The adapter the worker's device runs on. */
  adapter: string;
  /** Bytes downloaded by this load (0 when every file came from the cache). */
  networkBytes: number;
}

export interface GenerateReply {
  promptIds: number[];
  ids: number[];
  /** The generated ids decoded (special tokens skipped). */
  text: string;
  stopReason: GenerateResult['stopReason'];
  timings: Timings;
  /** Measured sparsity per phase and layer, as the kernels counted it. */
  stats: AttentionStats;
}

export type WorkerReply =
  | { type: 'loadPlan'; id: number; plan: ModelPlan }
  | { type: 'loadProgress'; id: number; progress: LoadProgress }
  | { type: 'modelLoaded'; id: number; info: LoadedModelInfo }
  /** `sweepId` names the sweep's results in IndexedDB (store/indexedDb.ts). */
  | { type: 'sweepEvent'; id: number; sweepId: string; event: SweepEvent }
  | { type: 'token'; id: number; token: number; index: number; text: string }
  | { type: 'generated'; id: number; reply: GenerateReply }
  | { type: 'attentionMap'; id: number; reply: AttentionMapReply }
  | { type: 'done'; id: number }
  | { type: 'error'; id: number; message: string; cancelled: boolean };
