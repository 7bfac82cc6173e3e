/**
 * Attention maps of a real model run. Before a prefill, captureAttentionQueries(model, request)
 * installs a hook that copies the post-RoPE queries of one layer at positions [queryStart,
 * queryEnd) into a capture buffer as each step's attention is recorded (model.ts calls
 * hook.record); after the run, modelAttentionMap computes the dense map of those queries against
 * the layer's paged K cache (src/kernels/attentionMap.ts), optionally with the mask a method kept.
 */
import {
  bindGroup,
  createEmptyBuffer,
  createUniformBuffer,
  readBuffer,
  readFloat32,
} from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import { float16BitsToFloat32 } from '../../gpu/f16';
import {
  blockSizeFor,
  computeAttentionMap,
  keptSharePerHead,
  recallPerHead,
  type AttentionMapGrid,
} from '../../kernels/attentionMap';
import { defaultScale } from '../../kernels/layout';
import { getMethod } from '../../methods/registry';
import { ceilDiv, type BlockMask } from '../../methods/reference/masks';
import type { MethodParams } from '../../methods/types';
import type { Model } from './model';

export interface AttentionCaptureRequest {
  layer: number;
  /** Absolute positions of the first and one past the last captured query. */
  queryStart: number;
  queryEnd: number;
}

/** One step's queries as the model holds them when it records a layer's attention. */
export interface CaptureStep {
  layer: number;
  /** q rows [token][head][dim] f32, row t at `rowOffset + t * rowStride` floats. */
  q: GPUBuffer;
  /** Absolute position of the step's row 0. */
  start: number;
  tokens: number;
  /** Floats between rows (default numHeads * headDim) and before row 0 (default 0). */
  rowStride?: number;
  rowOffset?: number;
}

/** The hook model.ts calls for every layer's attention of every step. */
export interface QueryCaptureHook {
  record(pass: GPUComputePassEncoder, step: CaptureStep): void;
}

const shaderName = 'attention/attention_map';
const workgroup = 64;

export class QueryCapture implements QueryCaptureHook {
  readonly request: AttentionCaptureRequest;
  /** Captured q[row][head][dim], row i at position queryStart + i. */
  readonly buffer: GPUBuffer;
  private readonly uniforms: GPUBuffer;
  private readonly rowWidth: number;
  /** Which rows a step has written so far (the map needs all of them). */
  private readonly captured: Uint8Array;

  constructor(
    private readonly ctx: GpuContext,
    shape: { numHeads: number; headDim: number; numLayers: number },
    request: AttentionCaptureRequest,
  ) {
    const { layer, queryStart, queryEnd } = request;
    if (!Number.isInteger(layer) || layer < 0 || layer >= shape.numLayers) {
      throw new Error(
        `attention map: layer ${layer} does not exist; the model has layers 0 .. ${shape.numLayers - 1}`,
      );
    }
    if (!Number.isInteger(queryStart) || !Number.isInteger(queryEnd) || queryStart < 0) {
      throw new Error(
        `attention map: the query range ${queryStart} .. ${queryEnd} must be whole positions >= 0`,
      );
    }
    if (queryEnd <= queryStart) {
      throw new Error(
        `attention map: the query range ${queryStart} .. ${queryEnd} is empty; queryEnd is one past the last query`,
      );
    }
    this.request = { ...request };
    this.rowWidth = shape.numHeads * shape.headDim;
    const rows = queryEnd - queryStart;
    this.buffer = createEmptyBuffer(ctx.device, rows * this.rowWidth * 4, 'captured queries');
    this.uniforms = createUniformBuffer(ctx.device, new Uint32Array(8), [], 'capture params');
    this.captured = new Uint8Array(rows);
  }

  get numQueries(): number {
    return this.request.queryEnd - this.request.queryStart;
  }

  /** Whether every query of the range went through a step since the capture began. */
  get complete(): boolean {
    return this.captured.every((row) => row === 1);
  }

  record(pass: GPUComputePassEncoder, step: CaptureStep): void {
    const { queryStart, queryEnd, layer } = this.request;
    if (step.layer !== layer) return;
    const first = Math.max(step.start, queryStart);
    const end = Math.min(step.start + step.tokens, queryEnd);
    if (first >= end) return;
    const pipeline = this.ctx.pipelines.get(shaderName, { CAPTURE: true });
    // Written now, read by this step's submit: the model records one step per submit.
    const { device } = this.ctx;
    const rowStride = step.rowStride ?? this.rowWidth;
    const rowOffset = step.rowOffset ?? 0;
    device.queue.writeBuffer(
      this.uniforms,
      0,
      Uint32Array.of(
        step.start,
        step.tokens,
        queryStart,
        queryEnd,
        this.rowWidth,
        rowStride,
        rowOffset,
      ),
    );
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup(device, pipeline, [this.uniforms, step.q, this.buffer]));
    pass.dispatchWorkgroups(ceilDiv(this.rowWidth, workgroup), step.tokens);
    this.captured.fill(1, first - queryStart, end - queryStart);
  }

  /** The captured queries, read back (for tests and exports). */
  read(): Promise<Float32Array> {
    return readFloat32(this.ctx.device, this.buffer, this.numQueries * this.rowWidth);
  }

  dispose(): void {
    this.buffer.destroy();
    this.uniforms.destroy();
  }
}

/**
 * Installs a capture on the model (replacing any earlier one, which is disposed); run the prefill
 * (or decode steps) over the range afterwards.
 */
export function captureAttentionQueries(
  ctx: GpuContext,
  model: Model,
  request: AttentionCaptureRequest,
): QueryCapture {
  const capture = new QueryCapture(ctx, model.config, request);
  if (request.queryEnd > model.maxSeqLen) {
    capture.dispose();
    throw new Error(
      `attention map: the query range ends at ${request.queryEnd}; the KV cache holds ${model.maxSeqLen} tokens`,
    );
  }
  if (model.queryCapture instanceof QueryCapture) model.queryCapture.dispose();
  model.queryCapture = capture;
  return capture;
}

export interface ModelAttentionMapOptions {
  /** Rows and keys per grid cell; 1 is token level. */
  blockSize: number;
  /** What a method kept for these queries (heads and query range as captured). */
  keptMask?: BlockMask;
}

/** The dense map of the captured queries against the layer's K cache, after the run. */
export async function modelAttentionMap(
  ctx: GpuContext,
  model: Model,
  capture: QueryCapture,
  options: ModelAttentionMapOptions,
): Promise<AttentionMapGrid> {
  const { layer, queryStart, queryEnd } = capture.request;
  if (!capture.complete || model.position < queryEnd) {
    throw new Error(
      `attention map: queries ${queryStart} .. ${queryEnd - 1} of layer ${layer} have not all been ` +
        `run since the capture began (the cache holds ${model.position} tokens); run a prompt of at ` +
        `least ${queryEnd} tokens after captureAttentionQueries`,
    );
  }
  const { config, kvLayout } = model;
  const { kPool, pageTable } = model.layerKvCache(layer);
  return computeAttentionMap(
    ctx,
    {
      numHeads: config.numHeads,
      numKvHeads: config.numKvHeads,
      headDim: config.headDim,
      numQueries: capture.numQueries,
      qStart: queryStart,
      scale: defaultScale(config.headDim),
      kv: kvLayout,
      blockSize: options.blockSize,
    },
    { q: capture.buffer, kPool, pageTable },
    options.keptMask,
  );
}

/**
 * One layer's cached keys and values of positions 0 .. tokens - 1, read back and unpaged into
 * contiguous token x kvHead x dim f32 (the CPU references' layout).
 */
export async function readLayerKv(
  ctx: GpuContext,
  model: Model,
  layer: number,
  tokens: number,
): Promise<{ k: Float32Array; v: Float32Array }> {
  const { pageSize, numKvHeads, headDim, dtype } = model.kvLayout;
  const { kPool, vPool, pageTable } = model.layerKvCache(layer);
  const pages = new Uint32Array(await readBuffer(ctx.device, pageTable));
  const unpage = async (pool: GPUBuffer) => {
    const words = await readBuffer(ctx.device, pool);
    const values =
      dtype === 'f16'
        ? Float32Array.from(new Uint16Array(words), float16BitsToFloat32)
        : new Float32Array(words);
    const out = new Float32Array(tokens * numKvHeads * headDim);
    for (let t = 0; t < tokens; t++) {
      const page = pages[Math.floor(t / pageSize)];
      for (let h = 0; h < numKvHeads; h++) {
        const src = ((page * numKvHeads + h) * pageSize + (t % pageSize)) * headDim;
        out.set(values.subarray(src, src + headDim), (t * numKvHeads + h) * headDim);
      }
    }
    return out;
  };
  return { k: await unpage(kPool), v: await unpage(vPool) };
}

/**
 * Longest prompt whose kept mask is planned by the method's float64 CPU reference: its cost grows
 * with the square of the length.
 */
export const MAX_KEPT_MASK_TOKENS = 2048;

export interface PromptAttentionMapRequest {
  ids: readonly number[];
  layer: number;
  /** Rows and keys per grid cell (1 is token level); blockSizeFor(prompt, heads) when absent. */
  blockSize?: number;
  /** Query positions [queryStart, queryEnd); the whole prompt when absent. */
  queryStart?: number;
  queryEnd?: number;
  /** A prefill method whose kept mask the map shows: its CPU reference on this layer's q, k, v. */
  method?: { name: string; params: MethodParams };
}

export interface PromptAttentionMap {
  grid: AttentionMapGrid;
  /** The method whose kept mask `grid.kept` follows; null without one. */
  method: string | null;
  /** Per head, the share of causal elements the method kept. */
  headBudgets: Float64Array | null;
  /** Token-level sparsity of the kept mask (1 - kept / causal elements). */
  sparsity: number | null;
  /** Dense mass on the kept elements, mean over queries and heads. */
  recall: number | null;
}

/**
 * Runs the prompt from position 0 (the model's cache is reset) with a capture on `layer` and maps
 * the attention of the query range; with a method, also what that method keeps of it.
 */
export async function promptAttentionMap(
  ctx: GpuContext,
  model: Model,
  request: PromptAttentionMapRequest,
): Promise<PromptAttentionMap> {
  const { ids, layer, method } = request;
  const blockSize = request.blockSize ?? blockSizeFor(ids.length, model.config.numHeads);
  const queryStart = request.queryStart ?? 0;
  const queryEnd = request.queryEnd ?? ids.length;
  if (queryEnd > ids.length) {
    throw new Error(
      `attention map: the query range ends at ${queryEnd}, past the ${ids.length} prompt tokens`,
    );
  }
  if (method && (queryStart !== 0 || queryEnd !== ids.length)) {
    throw new Error(
      `attention map: ${method.name} plans over the whole prompt; map queries 0 .. ` +
        `${ids.length - 1} to see what it keeps, or drop the method`,
    );
  }
  if (method && ids.length > MAX_KEPT_MASK_TOKENS) {
    throw new Error(
      `attention map: what ${method.name} keeps is planned on the CPU for prompts of at most ` +
        `${MAX_KEPT_MASK_TOKENS} tokens (this one has ${ids.length}); shorten the prompt, or map ` +
        'dense attention only (dense prefill)',
    );
  }
  model.reset();
  const capture = captureAttentionQueries(ctx, model, { layer, queryStart, queryEnd });
  try {
    await model.prefill(ids);
    let keptMask: BlockMask | undefined;
    if (method) {
      const sparse = getMethod(method.name);
      if (!sparse.phases.includes('prefill')) {
        throw new Error(
          `attention map: ${method.name} is a decode method; its kept mask needs a prefill method`,
        );
      }
      const { config } = model;
      const { k, v } = await readLayerKv(ctx, model, layer, queryEnd);
      const reference = sparse.reference(
        {
          q: await capture.read(),
          k,
          v,
          numQueries: capture.numQueries,
          qStart: queryStart,
          numHeads: config.numHeads,
          numKvHeads: config.numKvHeads,
          headDim: config.headDim,
          scale: defaultScale(config.headDim),
        },
        method.params,
      );
      keptMask = reference.mask;
    }
    const grid = await modelAttentionMap(ctx, model, capture, { blockSize, keptMask });
    const recall = keptMask ? recallPerHead(grid) : null;
    const headBudgets = keptMask ? keptSharePerHead(keptMask) : null;
    const mean = (values: Float64Array) => values.reduce((sum, x) => sum + x, 0) / values.length;
    return {
      grid,
      method: method?.name ?? null,
      headBudgets,
      // Every head has the same causal elements, so the kept share overall is the heads' mean.
      sparsity: headBudgets ? 1 - mean(headBudgets) : null,
      recall: recall ? mean(recall) : null,
    };
  } finally {
    capture.dispose();
    model.queryCapture = null;
  }
}
