/**
 * The sweep backend over the real model runtime (src/model/runtime/model.ts), shared by the Node
 * CLI and the browser worker: one configuration = one model on the GPU with that configuration's
 * attention methods, run on each sample with greedy decoding.
 *
 * Greedy decoding runs here rather than in Model.generate because the sweep needs the next-token
 * logits after the prompt and after the first generated token (for KL and top-1 agreement against
 * dense); the argmax is metrics.ts's (first index on ties).
 */
import type { GpuContext } from '../gpu/context';
import type { KvDtype } from '../kernels/layout';
import type { WeightDtype } from '../kernels/model/common';
import type { AttentionMethod } from '../model/runtime/attention';
import { MAX_KEPT_MASK_TOKENS, promptAttentionMap } from '../model/runtime/attentionMap';
import type { CpuModel } from '../model/runtime/cpuModel';
import {
  createModel,
  type AttentionStats,
  type LayerAttentionStats,
  type Model,
  type Timings,
} from '../model/runtime/model';
import type { ChatMessage, TextTokenizer } from '../model/tokenizer';
import { argmax } from './metrics';
import type {
  AttentionChoice,
  AttentionPair,
  BackendRun,
  ConfiguredRunner,
  PhaseMeasurement,
  SampleTimings,
  SweepBackend,
  SweepModelInfo,
} from './sweepTypes';

/** Text <-> ids as the sweep needs them. */
export interface PromptCodec {
  count(text: string): number;
  /** The ids the model is fed for a task prompt. */
  encodePrompt(prompt: string, chatMessages: readonly ChatMessage[]): number[];
  decode(ids: readonly number[]): string;
}

/**
 * A checkpoint's tokenizer as a PromptCodec. With `chat` the task's messages go through the
 * checkpoint's chat template (instruction-tuned models); without it the plain prompt is encoded.
 */
export function tokenizerCodec(tokenizer: TextTokenizer, { chat = false } = {}): PromptCodec {
  if (chat && !tokenizer.chatTemplate) {
    throw new Error(
      'this model has no chat template (tokenizer_config.json has no chat_template); ' +
        'run without the chat template',
    );
  }
  return {
    count: (text) => tokenizer.encode(text, { addSpecialTokens: false }).length,
    encodePrompt: (prompt, messages) =>
      chat ? tokenizer.encodeChat(messages) : tokenizer.encode(prompt),
    decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
  };
}

export interface ModelBackendOptions {
  /** Shown in results and used to refuse resuming another model's results. */
  name: string;
  weightDtype?: WeightDtype;
  kvDtype?: KvDtype;
  /** Most tokens per prefill submit (the runtime's default when absent). */
  prefillChunk?: number;
}

/** The runtime's method option for a choice (its params are the registry's). */
export function runtimeMethod(choice: AttentionChoice): AttentionMethod {
  return { name: choice.name, params: choice.params };
}

function phaseMeasurement(layers: readonly LayerAttentionStats[]): PhaseMeasurement {
  let touched = 0;
  let total = 0;
  let plannerMs = 0;
  for (const layer of layers) {
    touched += layer.touched;
    total += layer.total;
    plannerMs += layer.plannerMs;
  }
  return {
    sparsity: total > 0 ? 1 - touched / total : 0,
    touched,
    total,
    layers: layers.map((layer, i) => ({
      layer: i,
      method: layer.method,
      unit: layer.unit,
      touched: layer.touched,
      total: layer.total,
      sparsity: layer.sparsity,
      ...(layer.perHead ? { perHead: layer.perHead } : {}),
    })),
    plannerMs,
  };
}

/** Measured sparsity per phase from the model's kernel counts. */
export function measurementsOf(stats: AttentionStats): BackendRun['measured'] {
  return { prefill: phaseMeasurement(stats.prefill), decode: phaseMeasurement(stats.decode) };
}

export function sampleTimingsOf(timings: Timings): SampleTimings {
  return {
    source: timings.source,
    prefillMs: timings.prefill.ms,
    prefillTokens: timings.prefill.tokens,
    decodeMs: timings.decode.ms,
    decodeTokens: timings.decode.tokens,
  };
}

function abortError(): Error {
  const error = new Error('the run was cancelled');
  error.name = 'AbortError';
  return error;
}

/**
 * Greedy generation that keeps the logits after the prompt and after the first generated token.
 * Stops at an end-of-sequence id of the config, at maxNewTokens, when the cache is full, or when
 * the signal fires (throws an AbortError).
 */
export async function greedyWithLogits(
  model: Model,
  promptIds: readonly number[],
  options: { maxNewTokens: number; signal?: AbortSignal },
): Promise<{ ids: number[]; afterPrompt: Float32Array; afterFirstToken: Float32Array | null }> {
  const { maxNewTokens, signal } = options;
  const stop = new Set(model.config.eosTokenIds);
  model.reset();
  if (signal?.aborted) throw abortError();
  const afterPrompt = await model.prefill(promptIds);
  let afterFirstToken: Float32Array | null = null;
  let logits = afterPrompt;
  const ids: number[] = [];
  while (ids.length < maxNewTokens) {
    if (signal?.aborted) throw abortError();
    const id = argmax(logits);
    ids.push(id);
    if (stop.has(id) || ids.length >= maxNewTokens || model.position >= model.maxSeqLen) break;
    logits = await model.decodeStep(id);
    if (ids.length === 1) afterFirstToken = logits;
  }
  return { ids, afterPrompt, afterFirstToken };
}

export class ModelBackend implements SweepBackend {
  readonly model: SweepModelInfo;

  constructor(
    private readonly ctx: GpuContext,
    private readonly cpu: CpuModel,
    private readonly codec: PromptCodec,
    private readonly options: ModelBackendOptions,
  ) {
    const config = cpu.config;
    this.model = {
      name: options.name,
      layers: config.numLayers,
      heads: config.numHeads,
      kvHeads: config.numKvHeads,
      headDim: config.headDim,
      width: config.hiddenSize,
      vocabSize: config.vocabSize,
      maxPositions: config.maxPositionEmbeddings,
      kvBytes: (options.kvDtype ?? 'f32') === 'f16' ? 2 : 4,
    };
  }

  countTokens(text: string): number {
    return this.codec.count(text);
  }

  encodePrompt(prompt: string, chatMessages: readonly ChatMessage[]): number[] {
    const ids = this.codec.encodePrompt(prompt, chatMessages);
    const vocab = this.model.vocabSize;
    const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
    if (bad >= 0) {
      throw new Error(
        `the tokenizer gave token ${bad} of a prompt the id ${ids[bad]}, outside the model's ` +
          `vocabulary (0..${vocab - 1}): use the tokenizer that belongs to ${this.model.name}`,
      );
    }
    return ids;
  }

  async configure(
    attention: AttentionPair,
    maxSeqLen: number,
    options: { recallLayer?: number } = {},
  ): Promise<ConfiguredRunner> {
    const { recallLayer } = options;
    const recallMethod = attention.prefill.name === 'dense' ? null : attention.prefill;
    const model = createModel(this.ctx, this.cpu, {
      weightDtype: this.options.weightDtype,
      kvDtype: this.options.kvDtype,
      prefillChunk: this.options.prefillChunk,
      maxSeqLen,
      attention: {
        prefill: runtimeMethod(attention.prefill),
        decode: runtimeMethod(attention.decode),
      },
    });
    return {
      run: async (promptIds, { maxNewTokens, signal }): Promise<BackendRun> => {
        const generated = await greedyWithLogits(model, promptIds, { maxNewTokens, signal });
        // Read before the recall's extra prefill resets them.
        const measured = measurementsOf(model.stats);
        const timings = sampleTimingsOf(model.timings);
        let recall: number | null = null;
        if (
          recallLayer !== undefined &&
          recallMethod &&
          promptIds.length <= MAX_KEPT_MASK_TOKENS &&
          !signal?.aborted
        ) {
          const map = await promptAttentionMap(this.ctx, model, {
            ids: promptIds,
            layer: recallLayer,
            method: recallMethod,
          });
          recall = map.recall;
        }
        return {
          outputIds: generated.ids,
          output: this.codec.decode(generated.ids),
          logits: {
            afterPrompt: generated.afterPrompt,
            afterFirstToken: generated.afterFirstToken,
          },
          measured,
          recall,
          timings,
        };
      },
      dispose: () => model.dispose(),
    };
  }
}
