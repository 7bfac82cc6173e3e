/**
 * The sweep backend over the real model runtime (src/model/runtime/model.ts), shared by the Node
 * CLI and the browser worker: one configuration = one model on the GPU with that configuration's
 * attention methods, run on each sample with greedy decoding.
 *
 * Greedy decoding runs here rather than in Model.generate because the sweep needs the next-token
 * logits after the prompt and after the first generated token (for KL and top-1 agreement against
 * dense); the argmax is metrics.ts's (first index on ties).
 *
 * Attention recall (with a recall layer) comes from one extra run of the configured model with
 * that layer's queries captured, after the measured run so that its timings and counts are clean:
 * - prefill methods, prompts up to exactRecallMaxTokens: exact over every query, with the mask the
 *   method's CPU reference plans over the whole prompt (attention-map kernel);
 * - longer prompts: on a seeded sample of query rows (recall.ts), with the mask the method's
 *   in-model hook plans over the whole prompt as one chunk; BLASST decides inside its kernel and
 *   exposes no mask, so it has no recall there;
 * - decode methods: exact for the first decode step's query, with what the method's CPU
 *   reference keeps for it (Quest's pages, SnapKV's and Ada-SnapKV's tokens observed over the
 *   prompt's queries, BLASST's blocks).
 */
import { createEmptyBuffer } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import { defaultScale, type KvDtype } from '../kernels/layout';
import type { WeightDtype } from '../kernels/model/common';
import { getMethod } from '../methods/registry';
import type { BlockMask } from '../methods/reference/masks';
import type { MethodInput } from '../methods/types';
import { prefillAttention, type AttentionMethod } from '../model/runtime/attention';
import {
  captureAttentionQueries,
  MAX_KEPT_MASK_TOKENS,
  promptAttentionMap,
  readLayerKv,
} from '../model/runtime/attentionMap';
import type { CpuModel } from '../model/runtime/cpuModel';
import {
  uploadModel,
  type AttentionStats,
  type LayerAttentionStats,
  type Model,
  type Timings,
} from '../model/runtime/model';
import type { ChatMessage, TextTokenizer } from '../model/tokenizer';
import { argmax, summarizeRecall } from './metrics';
import { DEFAULT_RECALL_QUERIES, recallOfRows, sampleQueryRows } from './recall';
import type {
  AttentionChoice,
  AttentionPair,
  BackendRun,
  ConfiguredRunner,
  PhaseMeasurement,
  RecallMeasurement,
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
  /**
   * Longest prompt whose prefill recall is exact (every query); longer ones are sampled. Default
   * MAX_KEPT_MASK_TOKENS, the longest prompt the methods' CPU references plan.
   */
  exactRecallMaxTokens?: number;
  /** Query rows a sampled recall measures (default DEFAULT_RECALL_QUERIES) and their seed (0). */
  recallQueries?: number;
  recallSeed?: number;
}

/** A recall, or why there is none. */
type RecallOutcome = Pick<BackendRun, 'recall' | 'recallUnavailable'>;

/**
 * The mask a prefill method's in-model hook plans for queries 0 .. numQueries - 1 of `layer`, on
 * the captured queries `q` and the layer's cache; null when the method exposes none (BLASST).
 */
async function inModelPrefillMask(
  ctx: GpuContext,
  model: Model,
  layer: number,
  q: GPUBuffer,
  numQueries: number,
  method: AttentionChoice,
): Promise<BlockMask | null> {
  const { config, kvLayout } = model;
  const { kPool, vPool, pageTable } = model.layerKvCache(layer);
  // The hook binds an output; the planned attention itself is never recorded.
  const out = createEmptyBuffer(
    ctx.device,
    numQueries * config.numHeads * config.headDim * 4,
    'recall attention output',
  );
  const op = prefillAttention(ctx, runtimeMethod(method), {
    layer,
    shape: config,
    kv: kvLayout,
    scale: defaultScale(config.headDim),
    q,
    kPool,
    vPool,
    pageTable,
    out,
    qStart: 0,
    numQueries,
  });
  try {
    if (op.plan) {
      const encoder = ctx.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      op.plan.record(pass);
      pass.end();
      ctx.device.queue.submit([encoder.finish()]);
    }
    return (await op.keptMask?.()) ?? null;
  } finally {
    op.dispose();
    out.destroy();
  }
}

/** The runtime's method option for a choice (its params are the registry's). */
export function runtimeMethod(choice: AttentionChoice): AttentionMethod {
  return { name: choice.name, params: choice.params };
}

function phaseMeasurement(layers: readonly LayerAttentionStats[]): PhaseMeasurement {
  let touched = 0;
  let total = 0;
  let plannerMs = 0;
  let plannerGpuMs = 0;
  for (const layer of layers) {
    touched += layer.touched;
    total += layer.total;
    plannerMs += layer.plannerMs;
    plannerGpuMs += layer.plannerGpuMs;
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
    plannerGpuMs,
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
    const { exactRecallMaxTokens, recallQueries } = options;
    if (
      exactRecallMaxTokens !== undefined &&
      !(Number.isInteger(exactRecallMaxTokens) && exactRecallMaxTokens >= 0)
    ) {
      throw new Error(
        `exactRecallMaxTokens must be a whole number of tokens >= 0, got ${exactRecallMaxTokens}`,
      );
    }
    if (exactRecallMaxTokens !== undefined && exactRecallMaxTokens > MAX_KEPT_MASK_TOKENS) {
      throw new Error(
        `exactRecallMaxTokens ${exactRecallMaxTokens} is past the ${MAX_KEPT_MASK_TOKENS} tokens ` +
          "the methods' CPU references plan; choose at most that",
      );
    }
    if (recallQueries !== undefined && !(Number.isInteger(recallQueries) && recallQueries >= 1)) {
      throw new Error(`recallQueries must be a positive integer, got ${recallQueries}`);
    }
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
    const model = await uploadModel(this.ctx, this.cpu, {
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
        let recall: RecallOutcome = { recall: null };
        if (recallLayer !== undefined && !signal?.aborted) {
          // A failed measurement of recall leaves the sample's score standing and says why.
          try {
            if (attention.prefill.name !== 'dense') {
              recall = await this.prefillRecall(model, promptIds, recallLayer, attention.prefill);
            } else if (attention.decode.name !== 'dense') {
              recall = await this.decodeRecall(
                model,
                promptIds,
                generated.ids[0],
                recallLayer,
                attention.decode,
              );
            }
          } catch (error) {
            recall = {
              recall: null,
              recallUnavailable: `measuring recall failed: ${(error as Error).message}`,
            };
          }
        }
        return {
          outputIds: generated.ids,
          output: this.codec.decode(generated.ids),
          logits: {
            afterPrompt: generated.afterPrompt,
            afterFirstToken: generated.afterFirstToken,
          },
          measured,
          ...recall,
          timings,
        };
      },
      dispose: () => model.dispose(),
    };
  }

  /** Recall of a prefill method at `layer`: exact for short prompts, sampled for long ones. */
  async prefillRecall(
    model: Model,
    ids: readonly number[],
    layer: number,
    method: AttentionChoice,
  ): Promise<RecallOutcome> {
    const exactMax = this.options.exactRecallMaxTokens ?? MAX_KEPT_MASK_TOKENS;
    if (ids.length <= exactMax) {
      const map = await promptAttentionMap(this.ctx, model, { ids, layer, method });
      return { recall: { recall: map.recall!, kind: 'exact', queries: ids.length } };
    }
    model.reset();
    const capture = captureAttentionQueries(this.ctx, model, {
      layer,
      queryStart: 0,
      queryEnd: ids.length,
    });
    try {
      await model.prefill(ids);
      const mask = await inModelPrefillMask(
        this.ctx,
        model,
        layer,
        capture.buffer,
        ids.length,
        method,
      );
      if (!mask) {
        return {
          recall: null,
          recallUnavailable:
            `${method.name} decides what to skip inside its kernel and exposes no kept mask; its ` +
            `recall is measured (from its CPU reference) only for prompts up to ${exactMax} tokens`,
        };
      }
      const rows = sampleQueryRows(
        ids.length,
        this.options.recallQueries ?? DEFAULT_RECALL_QUERIES,
        this.options.recallSeed ?? 0,
      );
      const { config } = model;
      const perRow = recallOfRows({
        numHeads: config.numHeads,
        numKvHeads: config.numKvHeads,
        headDim: config.headDim,
        scale: defaultScale(config.headDim),
        q: await capture.read(),
        k: (await readLayerKv(this.ctx, model, layer, ids.length)).k,
        mask,
        rows,
      });
      return { recall: measurementOf(perRow, rows.length === ids.length) };
    } finally {
      capture.dispose();
      model.queryCapture = null;
    }
  }

  /**
   * Recall of a decode method at `layer` for the first decode step's query (after `firstId`):
   * the dense mass on what the method's CPU reference keeps, observing the prompt's queries.
   */
  async decodeRecall(
    model: Model,
    ids: readonly number[],
    firstId: number,
    layer: number,
    method: AttentionChoice,
  ): Promise<RecallOutcome> {
    const length = ids.length;
    model.reset();
    const capture = captureAttentionQueries(this.ctx, model, {
      layer,
      queryStart: 0,
      queryEnd: length + 1,
    });
    try {
      await model.prefill(ids);
      await model.decodeStep(firstId);
      const { numHeads, numKvHeads, headDim } = model.config;
      const q = await capture.read();
      const { k, v } = await readLayerKv(this.ctx, model, layer, length + 1);
      const shape = { numHeads, numKvHeads, headDim, scale: defaultScale(headDim) };
      const prompt = (rows: Float32Array, width: number) => rows.subarray(0, length * width);
      const input: MethodInput = {
        ...shape,
        q: q.subarray(length * numHeads * headDim),
        k,
        v,
        numQueries: 1,
        qStart: length,
        observation: {
          ...shape,
          q: prompt(q, numHeads * headDim),
          k: prompt(k, numKvHeads * headDim),
          v: prompt(v, numKvHeads * headDim),
          numQueries: length,
          qStart: 0,
        },
      };
      const reference = getMethod(method.name).reference(input, method.params);
      return { recall: { recall: reference.recall, kind: 'exact', queries: 1 } };
    } finally {
      capture.dispose();
      model.queryCapture = null;
    }
  }
}

function measurementOf(perRow: Float64Array, everyRow: boolean): RecallMeasurement {
  const summary = summarizeRecall(perRow, everyRow ? 'exact' : 'sampled');
  return { recall: summary.recall, kind: summary.mode, queries: summary.queries };
}
