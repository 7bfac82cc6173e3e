/**
 * The forward pass, llama2.c style: one function builds the ops of a step of T tokens, in order:
 *
 *   x = embed(ids) (+ positions, GPT-2)
 *   for each layer:
 *     h = norm(x); q = Wq h; kv = Wkv h          (kv rows: k then v)
 *     rope(q, k) (Llama, Qwen2); write k, v to the paged cache at start .. start + T - 1
 *     a = attention(q, cache)                    (method per phase and layer: attention.ts)
 *     x += Wo a
 *     h = norm(x)
 *     gated: x += Wdown (silu(Wgate h) * Wup h)   GELU: x += Wproj gelu(Wfc h)
 *   logits = Wlm norm(x)                         (last row, or every row)
 *
 * prefill(ids) runs chunks of at most prefillChunk tokens; decodeStep(id) runs one; generate()
 * streams tokens (greedy: argmax on the GPU; else top-k candidates on the GPU, the draw on the CPU).
 * Every step is one compute pass in one submit; its GPU time is taken with timestamp queries.
 */
import { createEmptyBuffer, createStorageBuffer, readBuffer, readFloat32 } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import { packFloat16Pairs } from '../../gpu/f16';
import { seededRandom } from '../../engine/random';
import { defaultScale, wordsPerPage, type KvDtype, type PagedKvLayout } from '../../kernels/layout';
import { createSwiGlu } from '../../kernels/model/activation';
import {
  uploadWeightChunks,
  type ModelOp,
  type WeightChunk,
  type WeightDtype,
} from '../../kernels/model/common';
import { createEmbedding } from '../../kernels/model/embedding';
import { createKvWrite } from '../../kernels/model/kvWrite';
import { createLinear } from '../../kernels/model/linear';
import { createNorm } from '../../kernels/model/norm';
import { createRope } from '../../kernels/model/rope';
import {
  createArgmax,
  createTopK,
  maxTopK,
  readCandidates,
  sampleCandidates,
} from '../../kernels/model/sampling';
import { computeRopeInvFreq, type ModelConfig } from '../loading/config';
import {
  createLayerState,
  decodeAttention,
  prefillAttention,
  resolveAttention,
  type AttentionCall,
  type AttentionCount,
  type AttentionOp,
  type LayerState,
  type AttentionOptions,
  type AttentionPhase,
  type AttentionPlan,
} from './attention';
import type { QueryCaptureHook } from './attentionMap';
import type { CpuLinear, CpuModel, CpuNorm } from './cpuModel';
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
  /** Lower storage-binding limit for weight chunks (tests of the split path). */
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
  /** CPU milliseconds spent planning masks (CPU planners, or reading back a GPU plan's mask). */
  plannerMs: number;
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
  q: GpuLinear;
  kv: GpuLinear;
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
  token: GPUBuffer;
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

const emptyTiming = (): PhaseTiming => ({ ms: 0, tokens: 0, submits: 0 });

export class Model {
  readonly config: ModelConfig;
  readonly fit: FitReport;
  readonly maxSeqLen: number;
  readonly prefillChunk: number;
  readonly weightDtype: WeightDtype;
  readonly kvLayout: PagedKvLayout;
  private readonly plan: AttentionPlan;
  private readonly buffers: GPUBuffer[] = [];
  private readonly layers: GpuLayer[];
  private readonly embed: WeightChunk[];
  private readonly lmHead: WeightChunk[];
  private readonly positions: GPUBuffer | null;
  private readonly finalNorm: GpuNorm;
  private readonly invFreq: GPUBuffer | null;
  private readonly pageTable: GPUBuffer;
  private readonly scratch: Scratch;
  private readonly stepCache = new Map<string, StepOps>();
  private samplers = new Map<number, ModelOp>();
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
    this.kvLayout = {
      pageSize: PAGE_SIZE,
      numKvHeads: config.numKvHeads,
      headDim: config.headDim,
      dtype: options.kvDtype ?? 'f32',
    };
    this.plan = resolveAttention(options.attention, config.numLayers);
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
      q: linear(layer.q, `layer ${i} q`),
      kv: linear(layer.kv, `layer ${i} kv`),
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

    const n = this.prefillChunk;
    const qWidth = config.numHeads * config.headDim;
    const empty = (floats: number, label: string) =>
      this.keep(createEmptyBuffer(ctx.device, floats * 4, label));
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
      token: empty(1, 'next token'),
      candValues: empty(maxTopK, 'candidate values'),
      candIndices: empty(maxTopK, 'candidate ids'),
    };
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
    await this.runStep('decode', [id], false);
    return readFloat32(this.ctx.device, this.scratch.logits, this.config.vocabSize);
  }

  /** Streams up to maxNewTokens after the prompt (the cache is reset first). */
  async generate(promptIds: readonly number[], options: GenerateOptions): Promise<GenerateResult> {
    const { maxNewTokens, temperature = 0, topK = 0, topP = 1, seed = 0 } = options;
    const stop = new Set(options.stopTokens ?? this.config.eosTokenIds);
    const random = seededRandom(seed);
    this.reset();
    await this.runPrefill(promptIds, false);
    const ids: number[] = [];
    let stopReason: GenerateResult['stopReason'] = 'length';
    while (ids.length < maxNewTokens) {
      const id = await this.pickToken(temperature, topK, topP, random);
      ids.push(id);
      if ((await options.onToken?.(id, ids.length - 1)) === false) {
        stopReason = 'callback';
        break;
      }
      if (stop.has(id)) {
        stopReason = 'stop-token';
        break;
      }
      if (ids.length >= maxNewTokens) break;
      if (this.pos >= this.maxSeqLen) {
        stopReason = 'cache-full';
        break;
      }
      await this.runStep('decode', [id], false);
    }
    return { ids, stopReason, timings: this.timings };
  }

  dispose(): void {
    for (const ops of this.stepCache.values()) ops.dispose();
    for (const op of this.samplers.values()) op.dispose();
    this.stepCache.clear();
    this.samplers.clear();
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
    for (let i = 0; i < ids.length; i += this.prefillChunk) {
      const chunk = ids.slice(i, i + this.prefillChunk);
      const logits = await this.runStep('prefill', chunk, allLogits);
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

  /** One submit of `ids.length` tokens at the current position; advances it. */
  private async runStep(
    phase: AttentionPhase,
    ids: readonly number[],
    allLogits: boolean,
  ): Promise<Float32Array | null> {
    const { device } = this.ctx;
    const tokens = ids.length;
    const start = this.pos;
    if (start + tokens > this.maxSeqLen) {
      throw new Error(
        `the sequence would reach ${start + tokens} tokens; the KV cache holds ${this.maxSeqLen}`,
      );
    }
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) {
        throw new Error(
          `token id ${id} is outside the vocabulary (0..${this.config.vocabSize - 1})`,
        );
      }
    }
    device.queue.writeBuffer(this.scratch.ids, 0, Uint32Array.from(ids));
    device.queue.writeBuffer(this.scratch.start, 0, Uint32Array.of(start));
    const ops = this.stepOps(tokens, allLogits);
    const attention = new Map<number, AttentionOp>();
    const calls = new Map<number, AttentionCall>();
    /** Ops the layers' states add after prefill attention (SnapKV's selection). */
    const followUps: ModelOp[] = [];
    const methods = phase === 'prefill' ? this.plan.prefill : this.plan.decode;
    const attend = phase === 'prefill' ? prefillAttention : decodeAttention;
    const kvWidth = this.config.numKvHeads * this.config.headDim;
    for (const item of ops.items) {
      if (!('attentionLayer' in item)) continue;
      const layer = this.layers[item.attentionLayer];
      const call: AttentionCall = {
        layer: item.attentionLayer,
        shape: this.config,
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
      };
      calls.set(item.attentionLayer, call);
      attention.set(item.attentionLayer, attend(this.ctx, methods[item.attentionLayer], call));
    }
    // Usually one pass in one submit; a method that plans on the GPU (block_sparse,
    // vertical_slash, flexprefill) ends the pass after its plan, and the step goes on in a new
    // one once the plan is read back.
    let ms = 0;
    let timer = this.beginTimer();
    let encoder = device.createCommandEncoder();
    let pass = encoder.beginComputePass(timer.passDescriptor);
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
      if (op.plan) {
        op.plan.record(pass);
        pass.end();
        timer.resolve(encoder);
        const segmentStart = performance.now();
        device.queue.submit([encoder.finish()]);
        ms += await timer.read(segmentStart);
        await op.plan.resolve();
        timer = this.beginTimer();
        encoder = device.createCommandEncoder();
        pass = encoder.beginComputePass(timer.passDescriptor);
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
    timer.resolve(encoder);
    const wallStart = performance.now();
    device.queue.submit([encoder.finish()]);
    const logits = ops.allLogits ? await readFloat32(device, ops.allLogits, tokens * vocab) : null;
    ms += await timer.read(wallStart);
    for (const [layer, op] of attention) {
      this.addCount(phase, layer, methods[layer].name, await op.readCount());
    }
    for (const states of this.layerStates) {
      await states.prefill?.afterSubmit?.();
      await states.decode?.afterSubmit?.();
    }
    attention.forEach((op) => op.dispose());
    followUps.forEach((op) => op.dispose());
    this.pos += tokens;
    const timing = this.timingsValue[phase];
    timing.ms += ms;
    timing.tokens += tokens;
    timing.submits += 1;
    return logits;
  }

  /** Timestamps around the step's pass when the device has them, else wall-clock. */
  private beginTimer() {
    const { device, caps } = this.ctx;
    if (!caps.timestampQuery) {
      return {
        passDescriptor: {},
        resolve: () => {},
        read: async (wallStart: number) => {
          await device.queue.onSubmittedWorkDone();
          return performance.now() - wallStart;
        },
      };
    }
    const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
    const resolved = device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    return {
      passDescriptor: {
        timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
      },
      resolve: (encoder: GPUCommandEncoder) => encoder.resolveQuerySet(querySet, 0, 2, resolved, 0),
      read: async () => {
        const [begin, end] = new BigUint64Array(await readBuffer(device, resolved, 16));
        querySet.destroy();
        resolved.destroy();
        return end > begin ? Number(end - begin) / 1e6 : 0;
      },
    };
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
    const linear = (
      l: GpuLinear,
      x: GPUBuffer,
      out: GPUBuffer,
      extra: { accumulate?: boolean; activation?: 'gelu_tanh' | 'gelu' } = {},
    ) =>
      createLinear(
        ctx,
        { tokens: T, inFeatures: l.inFeatures, outFeatures: l.outFeatures, dtype, ...extra },
        { x, weight: l.weight, bias: l.bias, out },
      );
    const kvWidth = config.numKvHeads * config.headDim;

    items.push(
      createEmbedding(
        ctx,
        { tokens: T, features: hidden, dtype, start: s.start },
        { ids: s.ids, table: this.embed, positions: this.positions ?? undefined, out: s.x },
      ),
    );
    this.layers.forEach((layer, i) => {
      items.push(norm(layer.attnNorm, s.x, s.h));
      items.push(linear(layer.q, s.h, s.q));
      items.push(linear(layer.kv, s.h, s.kv));
      if (this.invFreq) {
        items.push(
          createRope(
            ctx,
            {
              tokens: T,
              numHeads: config.numHeads,
              numKvHeads: config.numKvHeads,
              headDim: config.headDim,
              start: s.start,
              kStride: 2 * kvWidth,
              kOffset: 0,
            },
            { q: s.q, k: s.kv, invFreq: this.invFreq },
          ),
        );
      }
      items.push(
        createKvWrite(
          ctx,
          {
            tokens: T,
            kv: this.kvLayout,
            start: s.start,
            kStride: 2 * kvWidth,
            kOffset: 0,
            vStride: 2 * kvWidth,
            vOffset: kvWidth,
          },
          { k: s.kv, v: s.kv, pageTable: this.pageTable, kPool: layer.kPool, vPool: layer.vPool },
        ),
      );
      items.push({ attentionLayer: i });
      items.push(linear(layer.o, s.attn, s.x, { accumulate: true }));
      items.push(norm(layer.mlpNorm, s.x, s.h));
      if (config.gatedMlp) {
        items.push(linear(layer.mlpIn, s.h, s.mlpIn));
        items.push(
          createSwiGlu(
            ctx,
            { tokens: T, features: config.intermediateSize },
            { gateUp: s.mlpIn, out: s.mlpAct },
          ),
        );
        items.push(linear(layer.mlpOut, s.mlpAct, s.x, { accumulate: true }));
      } else {
        const activation = config.activation === 'silu' ? undefined : config.activation;
        items.push(linear(layer.mlpIn, s.h, s.mlpAct, { activation }));
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

  /** The next token from scratch.logits: argmax on the GPU, or a draw among the top candidates. */
  private async pickToken(
    temperature: number,
    topK: number,
    topP: number,
    random: () => number,
  ): Promise<number> {
    const { ctx, scratch: s } = this;
    const vocab = this.config.vocabSize;
    const greedy = temperature <= 0 || topK === 1;
    const k = greedy ? 1 : Math.min(topK > 0 ? topK : maxTopK, maxTopK, vocab);
    let op = this.samplers.get(greedy ? 0 : k);
    if (!op) {
      op = greedy
        ? createArgmax(ctx, { vocabSize: vocab }, { logits: s.logits, out: s.token })
        : createTopK(
            ctx,
            { vocabSize: vocab, k },
            { logits: s.logits, values: s.candValues, indices: s.candIndices },
          );
      this.samplers.set(greedy ? 0 : k, op);
    }
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    op.record(pass);
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    if (greedy) return new Uint32Array(await readBuffer(ctx.device, s.token, 4))[0];
    const candidates = await readCandidates(
      ctx,
      { values: s.candValues, indices: s.candIndices },
      k,
    );
    return sampleCandidates(candidates, { temperature, topK, topP }, random);
  }
}

/** Uploads a CPU model; throws naming what does not fit the device. */
export function createModel(ctx: GpuContext, cpu: CpuModel, options: ModelOptions = {}): Model {
  return new Model(ctx, cpu, options);
}
