/**
 * The two attention call sites of the forward pass, one function per phase, each dispatching on a
 * method, per layer:
 *
 *   prefill  'dense'           dense causal prefill (densePrefill.ts)
 *            'block_sparse'    GPU planner (planners.ts planBlockSparseOnGpu, top `topChunks` key
 *                              blocks per query block), mask read back, block-sparse kernel
 *            'sliding_window'  window + sinks mask built on the CPU, block-sparse kernel
 *            'blasst'          dense prefill with BLASST block skipping (`lambda`)
 *   decode   'dense'           dense split decode (denseDecode.ts)
 *            'quest'           page summaries (kept up to date by the model after each KV write),
 *                              top pages within `tokenBudget` (quest.ts)
 *            'blasst'          dense decode with BLASST block skipping (`lambda`)
 *
 * Every op reports what its kernel counted (blocks or pages touched, and the total a dense run
 * touches), so the model can record the measured sparsity per phase and layer.
 */
import { createEmptyBuffer, readBuffer } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import type { RecordDispatches } from '../../gpu/timer';
import {
  blasstPrefillCountsBytes,
  createBlasstDecode,
  recordBlasstPrefill,
} from '../../kernels/blasst';
import { recordBlockSparsePrefill, SUPPORTED_BLOCK_SIZES } from '../../kernels/blockSparsePrefill';
import { createDenseDecode } from '../../kernels/denseDecode';
import { createDensePrefill, prefillTileConfig } from '../../kernels/densePrefill';
import type { AttentionShape, PagedKvLayout } from '../../kernels/layout';
import type { ModelOp } from '../../kernels/model/common';
import { pagesFor } from '../../kernels/pagedKv';
import { blockSparseMaskFromRows, planBlockSparseOnGpu } from '../../kernels/planners';
import { recordQuestDecode } from '../../kernels/quest';
import { blockCounts, type BlockMask } from '../../methods/reference/masks';
import { slidingWindow } from '../../methods/reference/slidingWindow';

export type AttentionPhase = 'prefill' | 'decode';

/** A method: its name alone (default parameters), or its name and numeric parameters. */
export type AttentionMethod = string | { name: string; params?: Record<string, number> };

/** A method with every parameter filled in. */
export interface ResolvedMethod {
  name: string;
  params: Record<string, number>;
}

export interface LayerAttentionOverride {
  prefill?: AttentionMethod;
  decode?: AttentionMethod;
}

export interface AttentionOptions {
  /** Method for every layer's prefill (default 'dense'). */
  prefill?: AttentionMethod;
  /** Method for every layer's decode (default 'dense'). */
  decode?: AttentionMethod;
  /** Per-layer overrides; entry i (if present) replaces the defaults for layer i. */
  layers?: readonly (LayerAttentionOverride | null | undefined)[];
}

/** Resolved per-layer methods. */
export interface AttentionPlan {
  prefill: ResolvedMethod[];
  decode: ResolvedMethod[];
}

/** Each method's parameters and their defaults. */
const METHOD_PARAMS: Record<AttentionPhase, Record<string, Record<string, number>>> = {
  prefill: {
    dense: {},
    block_sparse: { topChunks: 8, blockSize: 16 },
    sliding_window: { window: 1024, sinks: 4, blockSize: 64 },
    blasst: { lambda: 0.001 },
  },
  decode: {
    dense: {},
    quest: { tokenBudget: 1024 },
    blasst: { lambda: 0.001, blockTokens: 64 },
  },
};

export const PREFILL_METHODS: readonly string[] = Object.keys(METHOD_PARAMS.prefill);
export const DECODE_METHODS: readonly string[] = Object.keys(METHOD_PARAMS.decode);

/** Validates a method for a phase and fills in its default parameters. */
export function resolveMethod(
  phase: AttentionPhase,
  method: AttentionMethod,
  where = '',
): ResolvedMethod {
  const name = typeof method === 'string' ? method : method.name;
  const given = typeof method === 'string' ? {} : (method.params ?? {});
  const known = phase === 'prefill' ? PREFILL_METHODS : DECODE_METHODS;
  if (!known.includes(name)) {
    const other: AttentionPhase = phase === 'prefill' ? 'decode' : 'prefill';
    const hint = Object.hasOwn(METHOD_PARAMS[other], name)
      ? ` ('${name}' is a ${other} method)`
      : '';
    throw new Error(
      `unknown ${phase} attention method '${name}'${where}${hint} (available: ${known.join(', ')})`,
    );
  }
  const defaults = METHOD_PARAMS[phase][name];
  for (const [key, value] of Object.entries(given)) {
    if (!Object.hasOwn(defaults, key)) {
      const names = Object.keys(defaults);
      throw new Error(
        `${phase} method '${name}'${where} has no parameter '${key}' ` +
          `(available: ${names.length > 0 ? names.join(', ') : 'none'})`,
      );
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new Error(`${phase} method '${name}'${where}: parameter '${key}' must be a number`);
    }
  }
  const params = { ...defaults, ...given };
  const bad = (message: string) => new Error(`${phase} method '${name}'${where}: ${message}`);
  const blockSize = params.blockSize;
  if (blockSize !== undefined && !SUPPORTED_BLOCK_SIZES.includes(blockSize)) {
    throw bad(`blockSize must be ${SUPPORTED_BLOCK_SIZES.join(' or ')}, got ${blockSize}`);
  }
  if (name === 'block_sparse' && !(Number.isInteger(params.topChunks) && params.topChunks >= 3)) {
    throw bad(`topChunks must be an integer >= 3 (the forced blocks), got ${params.topChunks}`);
  }
  if (name === 'sliding_window' && !(params.window >= 1 && params.sinks >= 0)) {
    throw bad(`needs window >= 1 and sinks >= 0, got ${params.window} and ${params.sinks}`);
  }
  if (name === 'blasst' && !(params.lambda >= 0 && params.lambda <= 1)) {
    throw bad(`lambda must be in [0, 1], got ${params.lambda}`);
  }
  return { name, params };
}

export function resolveAttention(options: AttentionOptions = {}, numLayers: number): AttentionPlan {
  const layers = options.layers ?? [];
  if (layers.length > numLayers) {
    throw new Error(`attention overrides name ${layers.length} layers, the model has ${numLayers}`);
  }
  const plan: AttentionPlan = { prefill: [], decode: [] };
  for (let i = 0; i < numLayers; i++) {
    const where = layers[i] ? ` for layer ${i}` : '';
    plan.prefill.push(
      resolveMethod('prefill', layers[i]?.prefill ?? options.prefill ?? 'dense', where),
    );
    plan.decode.push(
      resolveMethod('decode', layers[i]?.decode ?? options.decode ?? 'dense', where),
    );
  }
  return plan;
}

export interface AttentionCall {
  layer: number;
  shape: AttentionShape;
  kv: PagedKvLayout;
  scale: number;
  /** [numQueries][numHeads][headDim] f32 */
  q: GPUBuffer;
  kPool: GPUBuffer;
  vPool: GPUBuffer;
  pageTable: GPUBuffer;
  /** [numQueries][numHeads][headDim] f32 */
  out: GPUBuffer;
  /** Absolute position of query 0; the keys 0 .. qStart + numQueries - 1 are in the pools. */
  qStart: number;
  numQueries: number;
  /** Quest page summaries of this layer, up to date for the first qStart + numQueries tokens. */
  questSummaries?: GPUBuffer;
}

/** What a kernel counted in one call. */
export interface AttentionCount {
  /** 'blocks' (key blocks per head and query block), 'pages' (per KV head) or 'tokens' (dense). */
  unit: 'blocks' | 'pages' | 'tokens';
  /** What the kernel processed. */
  touched: number;
  /** What dense attention processes in the same unit. */
  total: number;
}

export interface AttentionOp extends ModelOp {
  /**
   * Methods that plan on the GPU: `plan` dispatches go in the pass before `record`; the model then
   * submits, awaits `resolve()` (readback, mask), and records `record` in a new pass.
   */
  plan?: { record: RecordDispatches; resolve(): Promise<void> };
  /** After the submit: what the kernel counted. */
  readCount(): Promise<AttentionCount>;
}

function prefillParams(call: AttentionCall) {
  return {
    ...call.shape,
    numQueries: call.numQueries,
    qStart: call.qStart,
    scale: call.scale,
    kv: call.kv,
  };
}

const sum = (words: Uint32Array, from = 0, step = 1): number => {
  let total = 0;
  for (let i = from; i < words.length; i += step) total += words[i];
  return total;
};

/** Block-sparse prefill of a mask known now (sliding window) or after the GPU plan. */
function blockSparseOp(
  ctx: GpuContext,
  call: AttentionCall,
  mask: BlockMask | null,
  plan?: { record: RecordDispatches; mask(): Promise<BlockMask>; destroy(): void },
): AttentionOp {
  const params = prefillParams(call);
  const { device } = ctx;
  let current: BlockMask | null = null;
  let kernel: { record: RecordDispatches; dispose: () => void } | null = null;
  let counts: GPUBuffer | null = null;
  const build = (m: BlockMask) => {
    current = m;
    counts = createEmptyBuffer(device, Math.max(1, m.numHeads * m.numQueryBlocks) * 4, 'counts');
    kernel = recordBlockSparsePrefill(ctx, params, m, {
      q: call.q,
      kPool: call.kPool,
      vPool: call.vPool,
      pageTable: call.pageTable,
      out: call.out,
      counts,
    });
  };
  if (mask) build(mask);
  return {
    plan: plan && {
      record: plan.record,
      resolve: async () => build(await plan.mask()),
    },
    record: (pass) => {
      if (!kernel) throw new Error('block-sparse prefill: recorded before its plan was resolved');
      kernel.record(pass);
    },
    readCount: async () => {
      const m = current!;
      const rows = m.numHeads * m.numQueryBlocks;
      const words = new Uint32Array(await readBuffer(device, counts!, Math.max(1, rows) * 4));
      return {
        unit: 'blocks',
        touched: sum(words.subarray(0, rows)),
        total: blockCounts(m).causal,
      };
    },
    dispose: () => {
      kernel?.dispose();
      counts?.destroy();
      plan?.destroy();
    },
  };
}

function denseCount(call: AttentionCall): AttentionCount {
  // Causal (query, key) pairs per query head.
  const { numQueries: n, qStart } = call;
  const pairs = n * qStart + (n * (n + 1)) / 2;
  const total = pairs * call.shape.numHeads;
  return { unit: 'tokens', touched: total, total };
}

/** Causal attention of numQueries new tokens over the cache (their own K/V already written). */
export function prefillAttention(
  ctx: GpuContext,
  method: AttentionMethod | ResolvedMethod,
  call: AttentionCall,
): AttentionOp {
  const { name, params: p } = resolveMethod('prefill', method, ` for layer ${call.layer}`);
  const params = prefillParams(call);
  const buffers = {
    q: call.q,
    kPool: call.kPool,
    vPool: call.vPool,
    pageTable: call.pageTable,
    out: call.out,
  };
  const shape = { numHeads: call.shape.numHeads, numQueries: call.numQueries, qStart: call.qStart };
  switch (name) {
    case 'dense': {
      const prefill = createDensePrefill(ctx, params, buffers);
      return { ...prefill, readCount: async () => denseCount(call) };
    }
    case 'sliding_window': {
      const mask = slidingWindow(shape, {
        window: p.window,
        sinks: p.sinks,
        blockQ: p.blockSize,
        blockK: p.blockSize,
      });
      return blockSparseOp(ctx, call, mask);
    }
    case 'block_sparse': {
      const b = p.blockSize;
      if (call.qStart % b !== 0) {
        throw new Error(
          `prefill method 'block_sparse' for layer ${call.layer}: the chunk starts at ${call.qStart}, ` +
            `not a multiple of blockSize ${b} (use a prefillChunk that is a multiple of it)`,
        );
      }
      const gpuPlan = planBlockSparseOnGpu(ctx, params, buffers, {
        topChunks: p.topChunks,
        blockSize: b,
      });
      const { rows, rowLength, rowStride, numQueryBlocks } = gpuPlan.outputs;
      const rowCount = call.shape.numHeads * numQueryBlocks;
      return blockSparseOp(ctx, call, null, {
        record: gpuPlan.record,
        destroy: gpuPlan.destroy,
        mask: async () => {
          const [rowWords, lengths] = await Promise.all([
            readBuffer(ctx.device, rows, rowCount * rowStride * 4),
            readBuffer(ctx.device, rowLength, rowCount * 4),
          ]);
          return blockSparseMaskFromRows(
            shape,
            b,
            new Uint32Array(rowWords),
            new Uint32Array(lengths),
            rowStride,
          );
        },
      });
    }
    case 'blasst': {
      const config = prefillTileConfig(ctx, call.shape.headDim);
      const bytes = blasstPrefillCountsBytes(params, config);
      const counts = createEmptyBuffer(ctx.device, bytes, 'blasst prefill counts');
      const record = recordBlasstPrefill(
        ctx,
        params,
        { ...buffers, counts },
        { lambda: p.lambda, order: 'natural' },
        config,
      );
      return {
        record,
        dispose: () => counts.destroy(),
        readCount: async () => {
          const words = new Uint32Array(await readBuffer(ctx.device, counts, bytes));
          const kept = sum(words, 1, 2);
          return { unit: 'blocks', touched: kept, total: kept + sum(words, 0, 2) };
        },
      };
    }
    default:
      throw new Error(`prefill method '${name}' has no GPU implementation`);
  }
}

/** One query per head at position qStart over keys 0 .. qStart. */
export function decodeAttention(
  ctx: GpuContext,
  method: AttentionMethod | ResolvedMethod,
  call: AttentionCall,
): AttentionOp {
  const { name, params: p } = resolveMethod('decode', method, ` for layer ${call.layer}`);
  if (call.numQueries !== 1) throw new Error('decode attention takes one query');
  const params = { ...call.shape, kvLen: call.qStart + 1, scale: call.scale, kv: call.kv };
  const buffers = {
    q: call.q,
    kPool: call.kPool,
    vPool: call.vPool,
    pageTable: call.pageTable,
    out: call.out,
  };
  const { numKvHeads } = call.shape;
  switch (name) {
    case 'dense': {
      const decode = createDenseDecode(ctx, params, buffers);
      return {
        record: decode.record,
        dispose: () => decode.scratch.forEach((b) => b.destroy()),
        readCount: async () => {
          const total = numKvHeads * params.kvLen;
          return { unit: 'tokens', touched: total, total };
        },
      };
    }
    case 'quest': {
      if (!call.questSummaries) {
        throw new Error(`decode method 'quest' for layer ${call.layer}: no page summaries given`);
      }
      const decode = recordQuestDecode(
        ctx,
        { ...params, tokenBudget: p.tokenBudget },
        { ...buffers, summaries: call.questSummaries },
      );
      return {
        record: decode.record,
        dispose: () => decode.dispose(),
        readCount: async () => {
          const words = new Uint32Array(
            await readBuffer(ctx.device, decode.pageCounts, numKvHeads * 4),
          );
          const pages = pagesFor(params.kvLen, call.kv.pageSize);
          return { unit: 'pages', touched: sum(words), total: numKvHeads * pages };
        },
      };
    }
    case 'blasst': {
      const counts = createEmptyBuffer(ctx.device, numKvHeads * 8, 'blasst decode counts');
      const decode = createBlasstDecode(
        ctx,
        params,
        { ...buffers, counts },
        { lambda: p.lambda, order: 'natural', blockTokens: p.blockTokens },
      );
      return {
        record: decode.record,
        dispose: () => [counts, ...decode.scratch].forEach((b) => b.destroy()),
        readCount: async () => {
          const words = new Uint32Array(await readBuffer(ctx.device, counts, numKvHeads * 8));
          const kept = sum(words, 1, 2);
          return { unit: 'blocks', touched: kept, total: kept + sum(words, 0, 2) };
        },
      };
    }
    default:
      throw new Error(`decode method '${name}' has no GPU implementation`);
  }
}
