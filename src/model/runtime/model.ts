/**
 * The forward pass, llama2.c style: one function builds the ops of a step of T tokens, in order:
 *
 *   x = embed(ids) (+ positions, GPT-2)
 *   for each layer:
 *     h = norm(x); q | kv = Wqkv h               (one linear, two outputs; kv rows: k then v)
 *     rope(q, k) (Llama, Qwen2) and write k, v to the paged cache at start .. start + T - 1
 *                                                (one dispatch)
 *     a = attention(q, cache)                    (method per phase and layer: attention.ts)
 *     x += Wo a
 *     h = norm(x)
 *     gated: x += Wdown (silu(Wgate h) * Wup h)   GELU: x += Wproj gelu(Wfc h)
 *   logits = Wlm norm(x)                         (last row, or every row)
 *
 * A step of at most 4 tokens (decode) applies each layer's two RMSNorms inside the linear that
 * reads them (the matrix-vector kernel sums x^2 beside its dot products) and SiLU(gate) * up inside
 * the down projection: 7 dispatches per layer with dense attention (GPT-2: 9, its LayerNorms and
 * GELU MLP as in prefill), where prefill has 10.
 *
 * prefill(ids) runs chunks of at most prefillChunk tokens; decodeStep(id) runs one; generate()
 * streams tokens (greedy: argmax on the GPU; else top-k candidates on the GPU, the draw on the CPU).
 * Every step is one compute pass in one submit; its GPU time is taken with timestamp queries.
 *
 * Decode when every layer's decode method is dense (and no method hooks into the steps) takes a
 * fast path: the step's ops, the layers' attention (denseDecodeLayers.ts), the sampler and the
 * readback buffers are built once, so a token costs one writeBuffer of its position, one command
 * encoder, one submit and one 4-byte mapping. Other methods build their attention per step
 * (submitStep), from buffers and bind groups the step scratch keeps. Either way, greedy steps run
 * one ahead of the readback (generate).
 */
import { createEmptyBuffer, createStorageBuffer, readFloat32 } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import { StepScratch } from '../../gpu/scratch';
import { StepReadback } from '../../gpu/stepReadback';
import { packFloat16Pairs } from '../../gpu/f16';
import { seededRandom } from '../../engine/random';
import {
  defaultScale,
  wordsPerPage,
  type AttentionShape,
  type KvDtype,
  type PagedKvLayout,
} from '../../kernels/layout';
import { createSwiGlu } from '../../kernels/model/activation';
import {
  uploadWeightChunks,
  type ModelOp,
  type WeightChunk,
  type WeightDtype,
} from '../../kernels/model/common';
import { createEmbedding } from '../../kernels/model/embedding';
import { createKvWrite } from '../../kernels/model/kvWrite';
import { createLinear, maxMatvecTokens } from '../../kernels/model/linear';
import { createNorm } from '../../kernels/model/norm';
import { createArgmax, createTopK, maxTopK, sampleCandidates } from '../../kernels/model/sampling';
import { formatMiB } from '../loading/gpuSize';
import { computeRopeInvFreq, type ModelConfig } from '../loading/config';
import {
  createLayerState,
  layerAttention,
  resolveAttention,
  type AttentionCall,
  type AttentionCount,
  type AttentionOp,
  type LayerAttention,
  type LayerState,
  type AttentionOptions,
  type AttentionPhase,
  type AttentionPlan,
} from './attention';
import type { QueryCaptureHook } from './attentionMap';
import { stackLinears, type CpuLinear, type CpuModel, type CpuNorm } from './cpuModel';
import { DenseDecodeLayers } from './denseDecodeLayers';
import { checkDeviceFit, PAGE_SIZE, type FitReport } from './fit';

export interface ModelOptions {
  /** Weights on the GPU as f32 (default) or f16 pairs packed in u32. */
  weightDtype?: WeightDtype;
  /** KV cache as f32 (default) or f16 pairs. */
  kvDtype?: KvDtype;
  /** Tokens the KV cache holds (default min(max_position_embeddings, 4096)). */
  maxSeqLen?: number;
  /** Most tokens per prefill submit (default 512). */
  prefillChunk?: number;
  attention?: AttentionOptions;
  /** Lower storage-binding limit for weight chunks and logits rows (tests of the split paths). */
  maxBindingBytes?: number;
}

export interface PhaseTiming {
  /** GPU milliseconds (timestamp queries), or wall-clock around the submit when unavailable. */
  ms: number;
  tokens: number;
  submits: number;
}

export interface Timings {
  source: 'timestamp-query' | 'wall-clock';
  prefill: PhaseTiming;
  decode: PhaseTiming;
}

/** What the attention kernels of one layer counted in one phase, summed over its calls. */
export interface LayerAttentionStats {
  method: string;
  unit: AttentionCount['unit'];
  /** Blocks, pages or (dense) tokens the kernels processed. */
  touched: number;
  /** What dense attention processes in the same unit. */
  total: number;
  /** 1 - touched / total (0 before any call). */
  sparsity: number;
  /**
   * The same per head, where the kernels count per head: query heads for block counts (block-sparse
   * methods, BLASST prefill), KV heads for pages and tokens (Quest, SnapKV, BLASST decode, dense).
   */
  perHead?: number[];
  /** CPU milliseconds spent building masks (CPU planners; GPU planners take none). */
  plannerMs: number;
  /**
   * GPU milliseconds of the plans' dispatches (block_sparse, vertical_slash, flexprefill: each
   * plan is a timed pass of its own); 0 without timestamp queries.
   */
  plannerGpuMs: number;
  calls: number;
}

export interface AttentionStats {
  prefill: LayerAttentionStats[];
  decode: LayerAttentionStats[];
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 (default): greedy. */
  temperature?: number;
  /** 0: no top-k cut (the 64 best tokens are the candidates). */
  topK?: number;
  topP?: number;
  seed?: number;
  /** Stop after generating one of these (default: the config's eos ids). */
  stopTokens?: readonly number[];
  /** Called with every new token as soon as it is known; return false to stop. */
  onToken?: (id: number, index: number) => void | boolean | Promise<void | boolean>;
}

export interface GenerateResult {
  ids: number[];
  stopReason: 'length' | 'stop-token' | 'callback' | 'cache-full';
  timings: Timings;
}

interface GpuLinear {
  weight: WeightChunk[];
  bias?: GPUBuffer;
  inFeatures: number;
  outFeatures: number;
}

interface GpuNorm {
  weight: GPUBuffer;
  bias?: GPUBuffer;
}

interface GpuLayer {
  attnNorm: GpuNorm;
  /** q rows, then k and v rows: one dispatch writes q and kv. */
  qkv: GpuLinear;
  o: GpuLinear;
  mlpNorm: GpuNorm;
  mlpIn: GpuLinear;
  mlpOut: GpuLinear;
  kPool: GPUBuffer;
  vPool: GPUBuffer;
}

/** Activations, sized for prefillChunk tokens. */
interface Scratch {
  ids: GPUBuffer;
  start: GPUBuffer;
  x: GPUBuffer;
  h: GPUBuffer;
  q: GPUBuffer;
  kv: GPUBuffer;
  attn: GPUBuffer;
  mlpIn: GPUBuffer;
  mlpAct: GPUBuffer;
  /** [vocab]: the last position's logits. */
  logits: GPUBuffer;
  candValues: GPUBuffer;
  candIndices: GPUBuffer;
}

/** The ops of one step that do not depend on the position (attention is built per step). */
type StepItem = ModelOp | { attentionLayer: number };

interface StepOps {
  items: StepItem[];
  /** [T][vocab] when every position's logits were asked for. */
  allLogits: GPUBuffer | null;
  dispose(): void;
}

/**
 * What a step hands back to the CPU, copied into one mappable buffer: the greedy token (or the
 * top-k candidates), the passes' timestamps and the kernels' counts (StepReadback). A few are made
 * once and reused; a slot's buffer grows when a step's counts need more room.
 */
interface StepSlot {
  staging: GPUBuffer;
  /** Timestamps of the step's passes (a begin and an end each), when the device has them. */
  querySet: GPUQuerySet | null;
  resolved: GPUBuffer | null;
}

/**
 * Staging layout: candidate values (or the greedy token) at 0, ids, then the timestamps, two per
 * pass (a step is one pass, plus two for every GPU plan, which gets a timed pass of its own), then
 * the counts from Model.countsOffset on.
 */
const slotIdsOffset = maxTopK * 4;
const slotTimestampsOffset = 2 * maxTopK * 4;

/** A submitted step (or the first token's sampling after the prompt), its readback to come. */
interface InFlight {
  slot: StepSlot;
  /** Whether its passes were timed (a forward pass, not the sampling alone). */
  timed: boolean;
  /** How many passes it recorded. */
  passes: number;
  /** Bytes of the slot's buffer it fills, mapped when it is done. */
  bytes: number;
  submittedAt: number;
}

/** A step that submitStep recorded and submitted: what readStep needs once it is done. */
interface SubmittedStep {
  phase: AttentionPhase;
  tokens: number;
  /** Every position's logits, when the step keeps them. */
  allLogits: GPUBuffer | null;
  attention: Map<number, AttentionOp>;
  followUps: ModelOp[];
  countReadback: StepReadback;
  /** The timed pass of each layer's GPU plan. */
  planPasses: Map<number, number>;
  submitted: InFlight;
}

/** A decode step submitted before its input token was accepted (generate). */
interface AheadStep {
  /** Its input was accepted: advances the position; resolves to the step's readback. */
  accept(): Promise<ArrayBuffer>;
  /** Its input ended the generation: waits for its readback buffer, counts nothing. */
  drop(): Promise<void>;
}

interface SamplerChoice {
  greedy: boolean;
  k: number;
}

/** What a step's submit copies out for the CPU besides its timestamps. */
interface Readback {
  /** The sampler to run after the forward pass; its token or candidates go to the slot. */
  sample?: SamplerChoice;
  /** scratch.logits, into the model's logits readback buffer. */
  logits?: boolean;
}

const emptyTiming = (): PhaseTiming => ({ ms: 0, tokens: 0, submits: 0 });

export class Model {
  readonly config: ModelConfig;
  readonly fit: FitReport;
  readonly maxSeqLen: number;
  readonly prefillChunk: number;
  /** Most prefill tokens per submit when every position's logits are kept: one binding holds them. */
  private readonly allLogitsChunk: number;
  readonly weightDtype: WeightDtype;
  readonly kvLayout: PagedKvLayout;
  private readonly plan: AttentionPlan;
  /** Per phase and layer, the plan's method as its in-model hook. */
  private readonly layerAttention: Record<AttentionPhase, LayerAttention[]>;
  /** The config's attention shape alone: the methods copy it into their params every step. */
  private readonly attentionShape: AttentionShape;
  private readonly buffers: GPUBuffer[] = [];
  private readonly layers: GpuLayer[];
  private readonly embed: WeightChunk[];
  private readonly lmHead: WeightChunk[];
  private readonly positions: GPUBuffer | null;
  private readonly finalNorm: GpuNorm;
  private readonly invFreq: GPUBuffer | null;
  private readonly pageTable: GPUBuffer;
  private readonly scratch: Scratch;
  /** What the attention ops of a step (runStep) use while it runs, kept for the next step. */
  private readonly stepScratch: StepScratch;
  private readonly stepCache = new Map<string, StepOps>();
  private samplers = new Map<number, ModelOp>();
  /**
   * Dense decode of every layer, built once, when every layer decodes densely and no method hooks
   * into the steps: decode steps then take the fast path (generate, decodeStep).
   */
  private readonly denseDecode: DenseDecodeLayers | null;
  /** Argmax of scratch.logits written into scratch.ids: the next step's input, on the GPU. */
  private greedyFeed: ModelOp | null = null;
  private readonly slots: StepSlot[] = [];
  private readonly freeSlots: StepSlot[] = [];
  /** [vocab] f32, mappable: decodeStep's logits, copied in the step's own submit. */
  private logitsReadback: GPUBuffer | null = null;
  /** When the last step's results reached the CPU (wall-clock timing of pipelined steps). */
  private lastStepDoneAt = 0;
  private pos = 0;
  private timingsValue: Timings;
  private statsValue: AttentionStats;
  /** Per layer, what its methods keep next to the KV cache (Quest's summaries, SnapKV's cache). */
  private readonly layerStates: { prefill?: LayerState; decode?: LayerState }[] = [];
  /** Per phase and layer, touched and total per head, summed over the calls. */
  private headCounts = Model.freshHeadCounts();
  // ---- attention-map capture (attentionMap.ts) ----
  /** Sees each layer's post-RoPE q rows during every step; set by captureAttentionQueries. */
  queryCapture: QueryCaptureHook | null = null;

  /** One layer's paged KV cache, for attention maps. */
  layerKvCache(layer: number): { kPool: GPUBuffer; vPool: GPUBuffer; pageTable: GPUBuffer } {
    const { kPool, vPool } = this.layers[layer];
    return { kPool, vPool, pageTable: this.pageTable };
  }
  // ---- end attention-map capture ----

  constructor(
    private readonly ctx: GpuContext,
    cpu: CpuModel,
    options: ModelOptions = {},
  ) {
    const config = (this.config = cpu.config);
    this.weightDtype = options.weightDtype ?? 'f32';
    this.maxSeqLen = options.maxSeqLen ?? Math.min(config.maxPositionEmbeddings, 4096);
    this.prefillChunk = Math.min(options.prefillChunk ?? 512, this.maxSeqLen);
    const bindingLimit =
      options.maxBindingBytes ??
      Math.min(ctx.caps.maxStorageBufferBindingSize, ctx.caps.maxBufferSize);
    this.allLogitsChunk = Math.max(
      1,
      Math.min(this.prefillChunk, Math.floor(bindingLimit / (config.vocabSize * 4))),
    );
    this.kvLayout = {
      pageSize: PAGE_SIZE,
      numKvHeads: config.numKvHeads,
      headDim: config.headDim,
      dtype: options.kvDtype ?? 'f32',
    };
    this.plan = resolveAttention(options.attention, config.numLayers);
    this.layerAttention = {
      prefill: this.plan.prefill.map((method) => layerAttention('prefill', method)),
      decode: this.plan.decode.map((method) => layerAttention('decode', method)),
    };
    const { numHeads, numKvHeads, headDim } = config;
    this.attentionShape = { numHeads, numKvHeads, headDim };
    this.fit = checkDeviceFit(cpu, ctx.caps, {
      weightDtype: this.weightDtype,
      kvDtype: this.kvLayout.dtype,
      maxSeqLen: this.maxSeqLen,
      prefillChunk: this.prefillChunk,
      maxBindingBytes: options.maxBindingBytes,
    });
    if (this.fit.problems.length > 0) {
      throw new Error(`the model does not fit this GPU: ${this.fit.problems.join('; ')}`);
    }
    this.timingsValue = this.freshTimings();
    this.statsValue = this.freshStats();

    const matrix = (data: Float32Array, rows: number, features: number, label: string) =>
      this.track(
        uploadWeightChunks(
          ctx,
          this.weightDtype === 'f16' ? packFloat16Pairs(data) : data,
          rows,
          features,
          this.weightDtype,
          options.maxBindingBytes,
          label,
        ),
      );
    const vector = (data: Float32Array | null, label: string) =>
      data ? this.keep(createStorageBuffer(ctx.device, data, label)) : undefined;
    const linear = (l: CpuLinear, label: string): GpuLinear => ({
      weight: matrix(l.weight, l.outFeatures, l.inFeatures, label),
      bias: vector(l.bias, `${label} bias`),
      inFeatures: l.inFeatures,
      outFeatures: l.outFeatures,
    });
    const norm = (n: CpuNorm, label: string): GpuNorm => ({
      weight: vector(n.weight, label) as GPUBuffer,
      bias: vector(n.bias, `${label} bias`),
    });

    const { vocabSize, hiddenSize } = config;
    this.embed = matrix(cpu.embedTokens, vocabSize, hiddenSize, 'embedding');
    this.lmHead = cpu.lmHead ? matrix(cpu.lmHead, vocabSize, hiddenSize, 'lm head') : this.embed;
    this.positions = cpu.positionEmbedding
      ? this.keep(
          createStorageBuffer(
            ctx.device,
            this.weightDtype === 'f16'
              ? packFloat16Pairs(cpu.positionEmbedding)
              : cpu.positionEmbedding,
            'positions',
          ),
        )
      : null;
    this.finalNorm = norm(cpu.finalNorm, 'final norm');
    this.invFreq = config.rope ? vector(computeRopeInvFreq(config), 'rope inv freq')! : null;
    const numPages = Math.ceil(this.maxSeqLen / PAGE_SIZE);
    const poolBytes = numPages * wordsPerPage(this.kvLayout) * 4;
    this.pageTable = this.keep(
      createStorageBuffer(
        ctx.device,
        Uint32Array.from({ length: numPages }, (_, i) => i),
        'page table',
      ),
    );
    this.layers = cpu.layers.map((layer, i) => ({
      attnNorm: norm(layer.attnNorm, `layer ${i} attn norm`),
      qkv: linear(stackLinears([layer.q, layer.kv]), `layer ${i} qkv`),
      o: linear(layer.o, `layer ${i} o`),
      mlpNorm: norm(layer.mlpNorm, `layer ${i} mlp norm`),
      mlpIn: linear(layer.mlpIn, `layer ${i} mlp in`),
      mlpOut: linear(layer.mlpOut, `layer ${i} mlp out`),
      kPool: this.keep(createEmptyBuffer(ctx.device, poolBytes, `layer ${i} k pool`)),
      vPool: this.keep(createEmptyBuffer(ctx.device, poolBytes, `layer ${i} v pool`)),
    }));
    this.layers.forEach((layer, i) => {
      const cache = {
        layer: i,
        shape: config,
        kv: this.kvLayout,
        kPool: layer.kPool,
        vPool: layer.vPool,
        pageTable: this.pageTable,
        numPages,
        maxSeqLen: this.maxSeqLen,
      };
      this.layerStates.push({
        prefill: createLayerState(ctx, 'prefill', this.plan.prefill[i], cache),
        decode: createLayerState(ctx, 'decode', this.plan.decode[i], cache),
      });
    });

    const hooked = this.layerStates.some((states) =>
      [states.prefill, states.decode].some((state) => state?.afterKvWrite || state?.afterSubmit),
    );
    const allDense = this.plan.decode.every((method) => method.name === 'dense');

    const n = this.prefillChunk;
    const qWidth = config.numHeads * config.headDim;
    const empty = (floats: number, label: string) =>
      this.keep(createEmptyBuffer(ctx.device, floats * 4, label));
    this.stepScratch = new StepScratch(ctx.device);
    this.scratch = {
      ids: empty(n, 'ids'),
      start: empty(1, 'start position'),
      x: empty(n * hiddenSize, 'residual'),
      h: empty(n * hiddenSize, 'normed'),
      q: empty(n * qWidth, 'q'),
      kv: empty(n * 2 * config.numKvHeads * config.headDim, 'kv'),
      attn: empty(n * qWidth, 'attention out'),
      mlpIn: empty(n * cpu.layers[0].mlpIn.outFeatures, 'mlp in'),
      mlpAct: empty(n * config.intermediateSize, 'mlp act'),
      logits: empty(vocabSize, 'logits'),
      candValues: empty(maxTopK, 'candidate values'),
      candIndices: empty(maxTopK, 'candidate ids'),
    };
    this.denseDecode =
      allDense && !hooked
        ? new DenseDecodeLayers(
            ctx,
            {
              numHeads: config.numHeads,
              numKvHeads: config.numKvHeads,
              headDim: config.headDim,
              scale: defaultScale(config.headDim),
              kv: this.kvLayout,
            },
            this.maxSeqLen,
            {
              q: this.scratch.q,
              out: this.scratch.attn,
              pageTable: this.pageTable,
              pools: this.layers,
            },
          )
        : null;
  }

  /** Tokens in the KV cache. */
  get position(): number {
    return this.pos;
  }

  get timings(): Timings {
    return structuredClone(this.timingsValue);
  }

  /** Measured attention sparsity per phase and layer, as the kernels counted it. */
  get stats(): AttentionStats {
    return structuredClone(this.statsValue);
  }

  /** Forgets the sequence (the cache is overwritten from position 0), the timings and stats. */
  reset(): void {
    this.pos = 0;
    this.timingsValue = this.freshTimings();
    this.statsValue = this.freshStats();
    this.headCounts = Model.freshHeadCounts();
  }

  /**
   * Runs the prompt through the model from the current position; returns the last position's
   * logits [vocab], or with allLogits every position's [T][vocab].
   */
  async prefill(ids: readonly number[], { allLogits = false } = {}): Promise<Float32Array> {
    const rows = await this.runPrefill(ids, allLogits);
    if (allLogits) return rows as Float32Array;
    return readFloat32(this.ctx.device, this.scratch.logits, this.config.vocabSize);
  }

  /** Appends one token; returns its logits [vocab]. */
  async decodeStep(id: number): Promise<Float32Array> {
    if (this.denseDecode) {
      this.checkStep([id]);
      this.ctx.device.queue.writeBuffer(this.scratch.ids, 0, Uint32Array.of(id));
      const { ms } = await this.finishStep(this.submitDecode(true, { logits: true }));
      this.commitDenseStep(ms);
    } else {
      await this.runStep('decode', [id], false, { logits: true });
    }
    const readback = this.logitsReadback!;
    await readback.mapAsync(GPUMapMode.READ);
    const logits = new Float32Array(readback.getMappedRange().slice(0));
    readback.unmap();
    return logits;
  }

  /**
   * Streams up to maxNewTokens after the prompt (the cache is reset first). Each decode step is
   * one submit that also samples its token (argmax, or the top-k candidates for the CPU's draw)
   * and copies it, with the pass's timestamps and the kernels' counts, into a reused readback
   * buffer. Greedy steps run one ahead: the argmax leaves the token in scratch.ids, where the next
   * step's embedding reads it, so step t + 1 is recorded and submitted before token t reaches the
   * CPU and neither the GPU nor the CPU waits on the readback. A step whose input ends the
   * generation (a stop token, the callback) is dropped: it wrote only past the last accepted
   * position, which the next step at that position writes again (Quest's page summaries too).
   */
  async generate(promptIds: readonly number[], options: GenerateOptions): Promise<GenerateResult> {
    const { maxNewTokens, temperature = 0, topK = 0, topP = 1, seed = 0 } = options;
    const stop = new Set(options.stopTokens ?? this.config.eosTokenIds);
    const random = seededRandom(seed);
    const choice = this.samplerChoice(temperature, topK);
    this.reset();
    await this.runPrefill(promptIds, false);
    // An attention-map capture marks the rows a step records: no step runs ahead of its input.
    const runAhead = choice.greedy && !this.queryCapture;
    const ids: number[] = [];
    let pending = this.readDecode(this.submitDecode(false, { sample: choice }));
    let ahead: AheadStep | null = null;
    try {
      for (;;) {
        const canStep = ids.length + 1 < maxNewTokens && this.pos < this.maxSeqLen;
        ahead = runAhead && canStep ? this.submitAhead(choice) : null;
        const bytes = await pending;
        const id = choice.greedy
          ? new Uint32Array(bytes, 0, 1)[0]
          : sampleCandidates(
              {
                values: new Float32Array(bytes, 0, choice.k),
                indices: new Uint32Array(bytes, slotIdsOffset, choice.k),
              },
              { temperature, topK, topP },
              random,
            );
        ids.push(id);
        const ended: GenerateResult['stopReason'] | null =
          (await options.onToken?.(id, ids.length - 1)) === false
            ? 'callback'
            : stop.has(id)
              ? 'stop-token'
              : ids.length >= maxNewTokens
                ? 'length'
                : this.pos >= this.maxSeqLen
                  ? 'cache-full'
                  : null;
        if (ended) return { ids, stopReason: ended, timings: this.timings };
        if (ahead) {
          pending = ahead.accept();
          ahead = null;
        } else if (this.denseDecode) {
          this.ctx.device.queue.writeBuffer(this.scratch.ids, 0, Uint32Array.of(id));
          pending = this.readDecode(this.submitDecode(true, { sample: choice }));
          this.commitDenseStep(0);
        } else {
          const { sampled } = await this.runStep('decode', [id], false, { sample: choice });
          pending = Promise.resolve(sampled);
        }
      }
    } finally {
      if (ahead) await ahead.drop();
    }
  }

  /**
   * A greedy decode step at the current position whose input is the token that the step before
   * left in scratch.ids: accepted (advancing the position) once that token is, else dropped.
   */
  private submitAhead(choice: SamplerChoice): AheadStep {
    if (this.denseDecode) {
      const step = this.submitDecode(true, { sample: choice });
      return {
        accept: () => {
          const bytes = this.readDecode(step);
          this.commitDenseStep(0);
          return bytes;
        },
        // Its readback buffer is free again once its mapping has been taken.
        drop: async () => void (await this.finishStep(step)),
      };
    }
    const step = this.submitStep('decode', 1, false, { sample: choice });
    return {
      accept: () => {
        const bytes = this.readStep(step).then(({ sampled }) => sampled);
        this.pos += 1;
        return bytes;
      },
      drop: () => this.dropStep(step),
    };
  }

  dispose(): void {
    for (const ops of this.stepCache.values()) ops.dispose();
    for (const op of this.samplers.values()) op.dispose();
    this.stepCache.clear();
    this.samplers.clear();
    this.greedyFeed?.dispose();
    this.denseDecode?.dispose();
    this.logitsReadback?.destroy();
    this.stepScratch.destroy();
    for (const slot of this.slots) {
      slot.staging.destroy();
      slot.querySet?.destroy();
      slot.resolved?.destroy();
    }
    for (const states of this.layerStates) {
      states.prefill?.dispose();
      states.decode?.dispose();
    }
    this.layerStates.length = 0;
    for (const buffer of this.buffers) buffer.destroy();
  }

  // ---- internals ----

  private freshTimings(): Timings {
    return {
      source: this.ctx.caps.timestampQuery ? 'timestamp-query' : 'wall-clock',
      prefill: emptyTiming(),
      decode: emptyTiming(),
    };
  }

  private freshStats(): AttentionStats {
    const layer = (method: { name: string }): LayerAttentionStats => ({
      method: method.name,
      unit: 'tokens',
      touched: 0,
      total: 0,
      sparsity: 0,
      plannerMs: 0,
      plannerGpuMs: 0,
      calls: 0,
    });
    return { prefill: this.plan.prefill.map(layer), decode: this.plan.decode.map(layer) };
  }

  private static freshHeadCounts(): Record<
    AttentionPhase,
    ({ touched: number[]; total: number[] } | undefined)[]
  > {
    return { prefill: [], decode: [] };
  }

  /** Adds what a kernel counted to the layer's stats of the phase. */
  private addCount(phase: AttentionPhase, layer: number, method: string, count: AttentionCount) {
    const stats = this.statsValue[phase][layer];
    stats.method = method;
    stats.unit = count.unit;
    stats.touched += count.touched;
    stats.total += count.total;
    stats.sparsity = stats.total > 0 ? 1 - stats.touched / stats.total : 0;
    stats.plannerMs += count.plannerMs ?? 0;
    stats.calls += 1;
    if (!count.perHead) return;
    const sums = (this.headCounts[phase][layer] ??= {
      touched: count.perHead.touched.map(() => 0),
      total: count.perHead.total.map(() => 0),
    });
    count.perHead.touched.forEach((n, h) => (sums.touched[h] += n));
    count.perHead.total.forEach((n, h) => (sums.total[h] += n));
    stats.perHead = sums.touched.map((n, h) => (sums.total[h] > 0 ? 1 - n / sums.total[h] : 0));
  }

  private keep(buffer: GPUBuffer): GPUBuffer {
    this.buffers.push(buffer);
    return buffer;
  }

  private track(chunks: WeightChunk[]): WeightChunk[] {
    chunks.forEach((chunk) => this.keep(chunk.buffer));
    return chunks;
  }

  private async runPrefill(
    ids: readonly number[],
    allLogits: boolean,
  ): Promise<Float32Array | null> {
    if (ids.length === 0) throw new Error('prefill: no tokens');
    const rows: Float32Array[] = [];
    const step = allLogits ? this.allLogitsChunk : this.prefillChunk;
    for (let i = 0; i < ids.length; i += step) {
      const chunk = ids.slice(i, i + step);
      const { logits } = await this.runStep('prefill', chunk, allLogits);
      if (logits) rows.push(logits);
    }
    if (!allLogits) return null;
    const out = new Float32Array(ids.length * this.config.vocabSize);
    let offset = 0;
    for (const row of rows) {
      out.set(row, offset);
      offset += row.length;
    }
    return out;
  }

  /** Throws when the tokens are not in the vocabulary or would not fit the KV cache. */
  private checkStep(ids: readonly number[]): void {
    const end = this.pos + ids.length;
    if (end > this.maxSeqLen) {
      throw new Error(
        `the sequence would reach ${end} tokens; the KV cache holds ${this.maxSeqLen}`,
      );
    }
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
        throw new Error(
          `token id ${id} is outside the vocabulary (0..${this.config.vocabSize - 1})`,
        );
      }
    }
  }

  /** One submit of `ids.length` tokens at the current position; advances it. */
  private async runStep(
    phase: AttentionPhase,
    ids: readonly number[],
    allLogits: boolean,
    readback: Readback = {},
  ): Promise<{ logits: Float32Array | null; sampled: ArrayBuffer }> {
    this.checkStep(ids);
    this.ctx.device.queue.writeBuffer(this.scratch.ids, 0, Uint32Array.from(ids));
    const result = await this.readStep(this.submitStep(phase, ids.length, allLogits, readback));
    this.pos += ids.length;
    return result;
  }

  /**
   * Records and submits a step of `tokens` tokens at the current position, whose ids are in
   * scratch.ids (written by the CPU, or by the step before's argmax); does not advance it. The
   * step scratch's bookkeeping ends with the submit: the queue runs the next step's clears and
   * input writes after this step's dispatches, so the next step may be recorded before this one's
   * readback (generate's greedy steps run one ahead).
   */
  private submitStep(
    phase: AttentionPhase,
    tokens: number,
    allLogits: boolean,
    readback: Readback,
  ): SubmittedStep {
    const { device } = this.ctx;
    const start = this.pos;
    device.queue.writeBuffer(this.scratch.start, 0, Uint32Array.of(start));
    const ops = this.stepOps(tokens, allLogits);
    const attention = new Map<number, AttentionOp>();
    const calls = new Map<number, AttentionCall>();
    /** Ops the layers' states add after prefill attention (SnapKV's selection). */
    const followUps: ModelOp[] = [];
    const attend = this.layerAttention[phase];
    const kvWidth = this.config.numKvHeads * this.config.headDim;
    const scratch = this.stepScratch;
    const countReadback = new StepReadback();
    try {
      for (const item of ops.items) {
        if (!('attentionLayer' in item)) continue;
        const layer = this.layers[item.attentionLayer];
        const call: AttentionCall = {
          layer: item.attentionLayer,
          shape: this.attentionShape,
          kv: this.kvLayout,
          scale: defaultScale(this.config.headDim),
          q: this.scratch.q,
          kPool: layer.kPool,
          vPool: layer.vPool,
          pageTable: this.pageTable,
          out: this.scratch.attn,
          qStart: start,
          numQueries: tokens,
          kvRows: { buffer: this.scratch.kv, stride: 2 * kvWidth, kOffset: 0, vOffset: kvWidth },
          state: this.layerStates[item.attentionLayer][phase],
          scratch,
          readback: countReadback,
        };
        calls.set(item.attentionLayer, call);
        attention.set(item.attentionLayer, attend[item.attentionLayer](this.ctx, call));
      }
      // One submit. A method that plans on the GPU (block_sparse, vertical_slash, flexprefill)
      // records its plan right before its attention; with timestamp queries the plan gets a timed
      // pass of its own, so that its GPU time is the layer's planner cost.
      const slot = this.takeSlot();
      const encoder = device.createCommandEncoder();
      scratch.recordClears(encoder);
      let passes = 0;
      let pass = encoder.beginComputePass(this.timedPass(slot, passes++));
      const planPasses = new Map<number, number>();
      for (const item of ops.items) {
        if (!('attentionLayer' in item)) {
          item.record(pass);
          continue;
        }
        // Attention-map capture (attentionMap.ts): q after the projection and RoPE.
        this.queryCapture?.record(pass, {
          layer: item.attentionLayer,
          q: this.scratch.q,
          start,
          tokens,
        });
        // After the layer's KV write: what the methods keep beside the cache follows it (Quest).
        const states = this.layerStates[item.attentionLayer];
        for (const state of [states.prefill, states.decode]) {
          state?.afterKvWrite?.(start, tokens)(pass);
        }
        const op = attention.get(item.attentionLayer)!;
        if (op.plan && slot.querySet) {
          pass.end();
          planPasses.set(item.attentionLayer, passes);
          pass = encoder.beginComputePass(this.timedPass(slot, passes++));
          op.plan.record(pass);
          pass.end();
          pass = encoder.beginComputePass(this.timedPass(slot, passes++));
        } else {
          op.plan?.record(pass);
        }
        op.record(pass);
        if (phase === 'prefill') {
          // The decode method may select from the prompt's queries while they are in q (SnapKV).
          for (const state of [states.prefill, states.decode]) {
            const followUp = state?.afterPrefillAttention?.(calls.get(item.attentionLayer)!);
            if (!followUp) continue;
            followUps.push(followUp);
            followUp.record(pass);
          }
        }
      }
      if (readback.sample) this.recordSampler(pass, readback.sample);
      pass.end();
      const vocab = this.config.vocabSize;
      if (ops.allLogits) {
        encoder.copyBufferToBuffer(
          ops.allLogits,
          (tokens - 1) * vocab * 4,
          this.scratch.logits,
          0,
          vocab * 4,
        );
      }
      const bytes = this.countsOffset + countReadback.bytes;
      countReadback.record(encoder, this.reserve(slot, bytes), this.countsOffset);
      const submitted = this.submitSegment(encoder, slot, readback, true, passes, bytes);
      return {
        phase,
        tokens,
        allLogits: ops.allLogits,
        attention,
        followUps,
        countReadback,
        planPasses,
        submitted,
      };
    } catch (error) {
      this.disposeStep({ attention, followUps });
      throw error;
    } finally {
      scratch.endStep();
    }
  }

  /**
   * Waits for a submitted step's readback; adds what its kernels counted and its time to the
   * phase's stats and timings.
   */
  private async readStep(
    step: SubmittedStep,
  ): Promise<{ logits: Float32Array | null; sampled: ArrayBuffer }> {
    const { phase, tokens, attention, countReadback } = step;
    const vocab = this.config.vocabSize;
    let logits: Float32Array | null;
    let sampled: ArrayBuffer;
    let ms: number;
    let passMs: number[];
    try {
      logits = step.allLogits
        ? await readFloat32(this.ctx.device, step.allLogits, tokens * vocab)
        : null;
      ({ bytes: sampled, ms, passMs } = await this.finishStep(step.submitted));
      countReadback.deliver(sampled, this.countsOffset);
      const methods = this.plan[phase];
      const counts = await Promise.all([...attention.values()].map((op) => op.readCount()));
      [...attention.keys()].forEach((layer, i) => {
        this.addCount(phase, layer, methods[layer].name, counts[i]);
        const planPass = step.planPasses.get(layer);
        if (planPass !== undefined) this.statsValue[phase][layer].plannerGpuMs += passMs[planPass];
      });
      if (phase === 'prefill') {
        for (const states of this.layerStates) {
          await states.prefill?.afterSubmit?.();
          await states.decode?.afterSubmit?.();
        }
      }
    } catch (error) {
      countReadback.fail(error);
      throw error;
    } finally {
      this.disposeStep(step);
    }
    const timing = this.timingsValue[phase];
    timing.ms += ms;
    timing.tokens += tokens;
    timing.submits += 1;
    return { logits, sampled };
  }

  /** A submitted step whose input ended the generation: waits for its slot, counts nothing. */
  private async dropStep(step: SubmittedStep): Promise<void> {
    try {
      await this.finishStep(step.submitted);
    } finally {
      this.disposeStep(step);
    }
  }

  private disposeStep(step: Pick<SubmittedStep, 'attention' | 'followUps'>): void {
    step.attention.forEach((op) => op.dispose());
    step.followUps.forEach((op) => op.dispose());
  }

  /** The ops of a step of `tokens` tokens, cached: their position comes from scratch.start. */
  private stepOps(tokens: number, allLogits: boolean): StepOps {
    const key = `${tokens}|${allLogits}`;
    let ops = this.stepCache.get(key);
    if (!ops) {
      if (this.stepCache.size >= 8) {
        for (const old of this.stepCache.values()) old.dispose();
        this.stepCache.clear();
      }
      ops = this.buildStep(tokens, allLogits);
      this.stepCache.set(key, ops);
    }
    return ops;
  }

  /** The forward pass for T tokens, as a list of ops (see the comment at the top). */
  private buildStep(T: number, allLogits: boolean): StepOps {
    const { ctx, config, scratch: s } = this;
    const hidden = config.hiddenSize;
    const dtype = this.weightDtype;
    const items: StepItem[] = [];
    const norm = (n: GpuNorm, x: GPUBuffer, out: GPUBuffer, tokens = T) =>
      createNorm(
        ctx,
        { kind: config.norm, tokens, features: hidden, eps: config.normEps },
        { x, weight: n.weight, bias: n.bias, out },
      );
    interface LinearExtra {
      accumulate?: boolean;
      activation?: 'gelu_tanh' | 'gelu';
      gatedInput?: boolean;
      /** Columns from `at` on go to `buffer`. */
      out2?: { buffer: GPUBuffer; at: number };
      /** An RMSNorm the matrix-vector kernel applies to x. */
      rmsNorm?: GpuNorm;
    }
    const linear = (l: GpuLinear, x: GPUBuffer, out: GPUBuffer, extra: LinearExtra = {}) =>
      createLinear(
        ctx,
        {
          tokens: T,
          inFeatures: l.inFeatures,
          outFeatures: l.outFeatures,
          dtype,
          accumulate: extra.accumulate,
          activation: extra.activation,
          gatedInput: extra.gatedInput,
          splitAt: extra.out2?.at,
          rmsNorm: extra.rmsNorm ? { eps: config.normEps } : undefined,
        },
        {
          x,
          weight: l.weight,
          bias: l.bias,
          out,
          out2: extra.out2?.buffer,
          normWeight: extra.rmsNorm?.weight,
        },
      );
    // A decode step (at most 4 tokens) applies an RMSNorm inside the linear that reads it;
    // prefill, and GPT-2's LayerNorm, normalise into s.h first.
    const fused = T <= maxMatvecTokens;
    const normedLinear = (n: GpuNorm, l: GpuLinear, out: GPUBuffer, extra: LinearExtra = {}) => {
      if (fused && config.norm === 'rmsnorm')
        return [linear(l, s.x, out, { ...extra, rmsNorm: n })];
      return [norm(n, s.x, s.h), linear(l, s.h, out, extra)];
    };
    const kvWidth = config.numKvHeads * config.headDim;

    items.push(
      createEmbedding(
        ctx,
        { tokens: T, features: hidden, dtype, start: s.start },
        { ids: s.ids, table: this.embed, positions: this.positions ?? undefined, out: s.x },
      ),
    );
    this.layers.forEach((layer, i) => {
      const qWidth = config.numHeads * config.headDim;
      items.push(
        ...normedLinear(layer.attnNorm, layer.qkv, s.q, { out2: { buffer: s.kv, at: qWidth } }),
      );
      // RoPE (Llama, Qwen2) runs inside the KV write's dispatch: q and k rotated in place, the
      // rotated k written to the cache.
      const pools = { pageTable: this.pageTable, kPool: layer.kPool, vPool: layer.vPool };
      const rows = {
        tokens: T,
        kv: this.kvLayout,
        start: s.start,
        kStride: 2 * kvWidth,
        kOffset: 0,
        vStride: 2 * kvWidth,
        vOffset: kvWidth,
      };
      items.push(
        this.invFreq
          ? createKvWrite(
              ctx,
              { ...rows, rope: { numHeads: config.numHeads } },
              { ...pools, kv: s.kv, q: s.q, invFreq: this.invFreq },
            )
          : createKvWrite(ctx, rows, { ...pools, k: s.kv, v: s.kv }),
      );
      items.push({ attentionLayer: i });
      items.push(linear(layer.o, s.attn, s.x, { accumulate: true }));
      if (config.gatedMlp) {
        items.push(...normedLinear(layer.mlpNorm, layer.mlpIn, s.mlpIn));
        if (fused) {
          items.push(linear(layer.mlpOut, s.mlpIn, s.x, { accumulate: true, gatedInput: true }));
        } else {
          items.push(
            createSwiGlu(
              ctx,
              { tokens: T, features: config.intermediateSize },
              { gateUp: s.mlpIn, out: s.mlpAct },
            ),
          );
          items.push(linear(layer.mlpOut, s.mlpAct, s.x, { accumulate: true }));
        }
      } else {
        const activation = config.activation === 'silu' ? undefined : config.activation;
        items.push(...normedLinear(layer.mlpNorm, layer.mlpIn, s.mlpAct, { activation }));
        items.push(linear(layer.mlpOut, s.mlpAct, s.x, { accumulate: true }));
      }
    });
    items.push(norm(this.finalNorm, s.x, s.h));
    const vocab = config.vocabSize;
    const allLogitsBuffer = allLogits
      ? createEmptyBuffer(ctx.device, T * vocab * 4, 'all logits')
      : null;
    items.push(
      createLinear(
        ctx,
        {
          tokens: allLogits ? T : 1,
          inFeatures: hidden,
          outFeatures: vocab,
          dtype,
          inputOffset: allLogits ? 0 : (T - 1) * hidden,
        },
        { x: s.h, weight: this.lmHead, out: allLogitsBuffer ?? s.logits },
      ),
    );
    return {
      items,
      allLogits: allLogitsBuffer,
      dispose: () => {
        for (const item of items) if (!('attentionLayer' in item)) item.dispose();
        allLogitsBuffer?.destroy();
      },
    };
  }

  /** Greedy (argmax) or the k best candidates for a draw. */
  private samplerChoice(temperature: number, topK: number): SamplerChoice {
    const greedy = temperature <= 0 || topK === 1;
    const k = greedy ? 1 : Math.min(topK > 0 ? topK : maxTopK, maxTopK, this.config.vocabSize);
    return { greedy, k };
  }

  /** The top-k candidates of scratch.logits, for a draw on the CPU. */
  private sampler(k: number): ModelOp {
    const { ctx, scratch: s } = this;
    let op = this.samplers.get(k);
    if (!op) {
      op = createTopK(
        ctx,
        { vocabSize: this.config.vocabSize, k },
        { logits: s.logits, values: s.candValues, indices: s.candIndices },
      );
      this.samplers.set(k, op);
    }
    return op;
  }

  /**
   * Submits one dense decode step at the current position (forward), and/or the sampler over
   * scratch.logits. The position is not advanced here (commitDenseStep).
   */
  private submitDecode(forward: boolean, readback: Readback): InFlight {
    const slot = this.takeSlot();
    const encoder = this.ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass(forward ? this.timedPass(slot) : {});
    if (forward) this.recordDenseStep(pass);
    if (readback.sample) this.recordSampler(pass, readback.sample);
    pass.end();
    return this.submitSegment(encoder, slot, readback, forward);
  }

  /** Timestamps of the step's pass `index` into the slot, when the device has them. */
  private timedPass(slot: StepSlot, index = 0): GPUComputePassDescriptor {
    if (!slot.querySet) return {};
    return {
      timestampWrites: {
        querySet: slot.querySet,
        beginningOfPassWriteIndex: 2 * index,
        endOfPassWriteIndex: 2 * index + 1,
      },
    };
  }

  /** The sampler's dispatches: greedy writes the token into scratch.ids (the next step's input). */
  private recordSampler(pass: GPUComputePassEncoder, choice: SamplerChoice): void {
    if (choice.greedy) {
      this.greedyFeed ??= createArgmax(
        this.ctx,
        { vocabSize: this.config.vocabSize },
        { logits: this.scratch.logits, out: this.scratch.ids },
      );
      this.greedyFeed.record(pass);
    } else {
      this.sampler(choice.k).record(pass);
    }
  }

  /** Copies the sampled token or candidates and the timestamps into the slot, and submits. */
  private submitSegment(
    encoder: GPUCommandEncoder,
    slot: StepSlot,
    readback: Readback,
    timed: boolean,
    passes = 1,
    bytes = this.countsOffset,
  ): InFlight {
    const s = this.scratch;
    const { sample } = readback;
    if (sample?.greedy) {
      encoder.copyBufferToBuffer(s.ids, 0, slot.staging, 0, 4);
    } else if (sample) {
      encoder.copyBufferToBuffer(s.candValues, 0, slot.staging, 0, sample.k * 4);
      encoder.copyBufferToBuffer(s.candIndices, 0, slot.staging, slotIdsOffset, sample.k * 4);
    }
    if (readback.logits) {
      const bytes = this.config.vocabSize * 4;
      this.logitsReadback ??= this.ctx.device.createBuffer({
        label: 'logits readback',
        size: bytes,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      encoder.copyBufferToBuffer(s.logits, 0, this.logitsReadback, 0, bytes);
    }
    if (timed && slot.querySet) {
      encoder.resolveQuerySet(slot.querySet, 0, 2 * passes, slot.resolved!, 0);
      encoder.copyBufferToBuffer(
        slot.resolved!,
        0,
        slot.staging,
        slotTimestampsOffset,
        16 * passes,
      );
    }
    const submittedAt = performance.now();
    this.ctx.device.queue.submit([encoder.finish()]);
    return { slot, timed, passes, bytes, submittedAt };
  }

  /** A decode submit's readback; a timed one's milliseconds go to the decode timing. */
  private async readDecode(step: InFlight): Promise<ArrayBuffer> {
    const { bytes, ms } = await this.finishStep(step);
    this.timingsValue.decode.ms += ms;
    return bytes;
  }

  /** The forward pass of one token at the current position, dense attention at every layer. */
  private recordDenseStep(pass: GPUComputePassEncoder): void {
    const dense = this.denseDecode!;
    const s = this.scratch;
    const start = this.pos;
    this.ctx.device.queue.writeBuffer(s.start, 0, Uint32Array.of(start));
    dense.prepare(start + 1);
    for (const item of this.stepOps(1, false).items) {
      if (!('attentionLayer' in item)) {
        item.record(pass);
        continue;
      }
      // Attention-map capture (attentionMap.ts): q after the projection and RoPE.
      this.queryCapture?.record(pass, { layer: item.attentionLayer, q: s.q, start, tokens: 1 });
      dense.record(pass, item.attentionLayer);
    }
  }

  /**
   * Waits for a submit's readback; if it was timed, its milliseconds (its passes' sum, each pass's
   * in passMs with timestamp queries).
   */
  private async finishStep(
    step: InFlight,
  ): Promise<{ bytes: ArrayBuffer; ms: number; passMs: number[] }> {
    const { staging, querySet } = step.slot;
    await staging.mapAsync(GPUMapMode.READ, 0, step.bytes);
    const doneAt = performance.now();
    const bytes = staging.getMappedRange(0, step.bytes).slice(0);
    staging.unmap();
    this.freeSlots.push(step.slot);
    let ms = 0;
    let passMs: number[] = [];
    if (step.timed && querySet) {
      const stamps = new BigUint64Array(bytes, slotTimestampsOffset, 2 * step.passes);
      passMs = Array.from({ length: step.passes }, (_, i) => {
        const [begin, end] = [stamps[2 * i], stamps[2 * i + 1]];
        return end > begin ? Number(end - begin) / 1e6 : 0;
      });
      ms = passMs.reduce((sum, passTime) => sum + passTime, 0);
    } else if (step.timed) {
      // Pipelined steps queue behind each other: a step's own time starts when the last one ended.
      ms = doneAt - Math.max(step.submittedAt, this.lastStepDoneAt);
    }
    this.lastStepDoneAt = doneAt;
    return { bytes, ms, passMs };
  }

  /** A free readback slot; made on first use (two at most are in flight). */
  private takeSlot(): StepSlot {
    const free = this.freeSlots.pop();
    if (free) return free;
    const { device, caps } = this.ctx;
    const maxPasses = this.maxPasses;
    const slot: StepSlot = {
      staging: this.stagingBuffer(this.countsOffset),
      querySet: caps.timestampQuery
        ? device.createQuerySet({ type: 'timestamp', count: 2 * maxPasses })
        : null,
      resolved: caps.timestampQuery
        ? device.createBuffer({
            label: 'decode step timestamps',
            size: 16 * maxPasses,
            usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
          })
        : null,
    };
    this.slots.push(slot);
    return slot;
  }

  /** The step's pass, and a plan's pass and the pass after it for every layer. */
  private get maxPasses(): number {
    return 1 + 2 * this.config.numLayers;
  }

  /** Where a slot's counts begin: after the timestamps of a step's most passes. */
  private get countsOffset(): number {
    return slotTimestampsOffset + 16 * this.maxPasses;
  }

  private stagingBuffer(size: number): GPUBuffer {
    return this.ctx.device.createBuffer({
      label: 'step readback',
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** The slot's buffer, grown (to a power of two) when it holds fewer than `bytes`. */
  private reserve(slot: StepSlot, bytes: number): GPUBuffer {
    if (slot.staging.size < bytes) {
      slot.staging.destroy();
      slot.staging = this.stagingBuffer(2 ** Math.ceil(Math.log2(bytes)));
    }
    return slot.staging;
  }

  /** The dense step at the current position is part of the sequence: advance, count, time. */
  private commitDenseStep(ms: number): void {
    const count = this.denseDecode!.count(this.pos + 1);
    for (let layer = 0; layer < this.config.numLayers; layer++) {
      this.addCount('decode', layer, 'dense', count);
    }
    this.pos += 1;
    const timing = this.timingsValue.decode;
    timing.ms += ms;
    timing.tokens += 1;
    timing.submits += 1;
  }
}

/** Uploads a CPU model; throws naming what does not fit the device. */
export function createModel(ctx: GpuContext, cpu: CpuModel, options: ModelOptions = {}): Model {
  return new Model(ctx, cpu, options);
}

/**
 * createModel inside an out-of-memory error scope. WebGPU tells nothing of free memory ahead of
 * time and a failed allocation does not throw, so a model that passes the limit checks but not the
 * GPU's memory would otherwise fail later, in some dispatch, with no word of why.
 */
export async function uploadModel(
  ctx: GpuContext,
  cpu: CpuModel,
  options: ModelOptions = {},
): Promise<Model> {
  ctx.device.pushErrorScope('out-of-memory');
  let model: Model | undefined;
  let failure: unknown;
  try {
    model = createModel(ctx, cpu, options);
  } catch (error) {
    failure = error;
  }
  const outOfMemory = await ctx.device.popErrorScope();
  if (outOfMemory) {
    const sizes = model
      ? `${formatMiB(model.fit.weightBytes)} of weights and ${formatMiB(model.fit.kvBytes)} of ` +
        `KV cache for ${model.maxSeqLen} tokens`
      : 'the model';
    model?.dispose();
    throw new Error(
      `${sizes} do not fit in this GPU's free memory (${outOfMemory.message}): choose a smaller ` +
        'model, f16 weights or KV cache, or a shorter context, or close other GPU-heavy tabs',
    );
  }
  if (!model) throw failure;
  return model;
}
