/**
 * The in-model side of a method (SparseMethod.inModel, see types.ts): how the forward pass of
 * src/model/runtime/model.ts runs the method's attention at one layer, on the model's own buffers
 * (q of the step, the layer's paged K/V pools), and what the kernels counted.
 *
 * The model calls, per layer and phase, `prefill(ctx, params, call)` or `decode(ctx, params, call)`
 * and records the returned op in the step's compute pass. A method that keeps something of its own
 * next to the KV cache (Quest's page summaries, SnapKV's compacted cache) creates it once per layer
 * with `createLayerState`; the model hands the state back in `call.state` and calls its hooks:
 * `afterKvWrite` after every KV write of the layer, `afterPrefillAttention` after every prefill
 * attention of the layer, `afterSubmit` once a prefill step's work is done.
 *
 * This file also holds the op builders the methods share: block-sparse attention on a mask known
 * now (position-only methods) or after a GPU plan, and dense prefill and decode.
 */
import { createEmptyBuffer, readBuffer } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import { stepResources, type StepScratch } from '../gpu/scratch';
import type { StepReadback } from '../gpu/stepReadback';
import type { RecordDispatches } from '../gpu/timer';
import {
  recordBlockSparsePrefill,
  recordBlockSparsePrefillOnTiles,
} from '../kernels/blockSparsePrefill';
import {
  createDenseDecode,
  tokensReadPerKvHead,
  type DecodeTokenSubset,
} from '../kernels/denseDecode';
import { createDensePrefill } from '../kernels/densePrefill';
import type { AttentionShape, PagedKvLayout } from '../kernels/layout';
import type { ModelOp } from '../kernels/model/common';
import {
  packTileMaskOnGpu,
  planVerticalSlashOnGpu,
  verticalSlashMaskFromGrid,
  type FlexPrefillPlanOptions,
  type TileMaskSource,
  type VerticalSlashPlanOptions,
} from '../kernels/planners';
import {
  causalKeyBlocks,
  type BlockMask,
  type MaskGeometry,
  type MaskShape,
} from './reference/masks';
import type { MethodParams, Phase } from './types';

/** Where the new tokens' K and V rows (f32, after RoPE) lie in the model's scratch. */
export interface KvRows {
  buffer: GPUBuffer;
  /** Floats between consecutive tokens' rows, and the offsets of K and V in a row. */
  stride: number;
  kOffset: number;
  vOffset: number;
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
  /** The new tokens' K and V rows (methods that keep their own copy of the cache append them). */
  kvRows?: KvRows;
  /** What the method's createLayerState made for this layer and phase. */
  state?: LayerState;
  /** Buffers the layers of the step share for what their plans use only while they run. */
  scratch?: StepScratch;
  /** The step's shared readback of what its kernels counted (countWords). */
  readback?: StepReadback;
}

/** What a kernel counted in one call. */
export interface AttentionCount {
  /** 'blocks' (key blocks per head and query block), 'pages' (per KV head) or 'tokens'. */
  unit: 'blocks' | 'pages' | 'tokens';
  /** What the kernel processed. */
  touched: number;
  /** What dense attention processes in the same unit. */
  total: number;
  /** The same per head where the kernel counts per head: query heads (blocks) or KV heads. */
  perHead?: { touched: number[]; total: number[] };
  /** CPU milliseconds spent building the mask (absent when the method plans on the GPU). */
  plannerMs?: number;
}

export interface AttentionOp extends ModelOp {
  /**
   * Methods that plan on the GPU: `plan` dispatches go in the same pass, before `record` (kept
   * apart so that the benchmark times them apart).
   */
  plan?: { record: RecordDispatches };
  /** After the submit: what the kernel counted. */
  readCount(): Promise<AttentionCount>;
  /**
   * The mask the kernel runs with (block-sparse ops; absent for the others), once the plan's
   * dispatches have run: a GPU plan's is read back and rebuilt on the CPU.
   */
  keptMask?(): Promise<BlockMask>;
}

/** The layer's KV cache, as a method's per-layer state sees it. */
export interface LayerCache {
  layer: number;
  shape: AttentionShape;
  kv: PagedKvLayout;
  kPool: GPUBuffer;
  vPool: GPUBuffer;
  pageTable: GPUBuffer;
  /** Pages the page table maps, and the tokens the cache holds. */
  numPages: number;
  maxSeqLen: number;
}

export interface LayerState {
  /** After the layer's KV write of tokens start .. start + tokens - 1, in the same pass. */
  afterKvWrite?(start: number, tokens: number): RecordDispatches;
  /** After the layer's prefill attention (its q still holds the chunk's queries). */
  afterPrefillAttention?(call: AttentionCall): ModelOp;
  /**
   * Once a prefill step's submit is done (readbacks the decode steps need). Not after decode steps:
   * greedy decode records a step before the one before it is done.
   */
  afterSubmit?(): Promise<void>;
  dispose(): void;
}

export interface InModelAttention {
  /** Per-layer state of the method when the model uses it in `phase` at that layer. */
  createLayerState?(
    ctx: GpuContext,
    cache: LayerCache,
    params: MethodParams,
    phase: Phase,
  ): LayerState;
  prefill?(ctx: GpuContext, params: MethodParams, call: AttentionCall): AttentionOp;
  decode?(ctx: GpuContext, params: MethodParams, call: AttentionCall): AttentionOp;
}

export function prefillParams(call: AttentionCall) {
  return {
    ...call.shape,
    numQueries: call.numQueries,
    qStart: call.qStart,
    scale: call.scale,
    kv: call.kv,
  };
}

/** The query rows of a call, as the masks see them. */
export function maskShapeOf(call: AttentionCall): MaskShape {
  return { numHeads: call.shape.numHeads, numQueries: call.numQueries, qStart: call.qStart };
}

export function decodeParams(call: AttentionCall) {
  if (call.numQueries !== 1) throw new Error('decode attention takes one query');
  return { ...call.shape, kvLen: call.qStart + 1, scale: call.scale, kv: call.kv };
}

export function attentionBuffers(call: AttentionCall) {
  return {
    q: call.q,
    kPool: call.kPool,
    vPool: call.vPool,
    pageTable: call.pageTable,
    out: call.out,
  };
}

export const sumOf = (words: ArrayLike<number>, from = 0, step = 1): number => {
  let total = 0;
  for (let i = from; i < words.length; i += step) total += words[i];
  return total;
};

export async function readU32(
  ctx: GpuContext,
  buffer: GPUBuffer,
  count: number,
): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(ctx.device, buffer, Math.max(1, count) * 4), 0, count);
}

/**
 * The first `count` u32 words of `buffer` as the call's submit leaves them, to read once it is done:
 * through the step's shared readback when the call has one (requested now, copied at the end of the
 * submit), else a readback of their own.
 */
export function countWords(
  ctx: GpuContext,
  call: AttentionCall,
  buffer: GPUBuffer,
  count: number,
): () => Promise<Uint32Array> {
  if (!call.readback) return () => readU32(ctx, buffer, count);
  const words = call.readback.request(buffer, count);
  return () => words;
}

/**
 * A buffer for what one layer's kernels count, zeros when the step begins: the step scratch's for
 * this layer when the call has one (the same buffer every step, so the bind groups over it are made
 * once), else a new one pushed to `owned` (the op destroys it).
 */
export function layerCountsBuffer(
  ctx: GpuContext,
  call: AttentionCall,
  role: string,
  bytes: number,
  owned: GPUBuffer[],
): GPUBuffer {
  return stepResources(ctx.device, call.scratch, owned).buffer(
    `${role}, layer ${call.layer}`,
    bytes,
  );
}

let lastPlanned: { key: string; mask: BlockMask } | null = null;

/**
 * The mask `plan` builds, or the one the last call with the same key built: every layer of a step
 * plans the same position-only mask (sliding window, a mask_mod, which FlexAttention's convention
 * takes to be pure), and building it on the CPU can take seconds at long contexts.
 */
export function plannedOnce(
  method: string,
  shape: MaskShape,
  params: MethodParams,
  plan: (shape: MaskShape) => BlockMask,
): BlockMask {
  const key = JSON.stringify([method, shape.numHeads, shape.numQueries, shape.qStart, params]);
  if (lastPlanned?.key !== key) lastPlanned = { key, mask: plan(shape) };
  return lastPlanned.mask;
}

/**
 * What the GPU plan of a block-sparse op does: its dispatches, the outputs the kernel's mask is
 * packed from on the GPU, and the mask read back from them (for recall, once they have run).
 */
export interface MaskPlan {
  record: RecordDispatches;
  source: TileMaskSource;
  mask(): Promise<BlockMask>;
  destroy(): void;
}

/**
 * Block-sparse attention (the prefill kernel, numQueries = 1 in decode) on the call's buffers, with
 * a mask built now on the CPU (`plan` a function: timed as planner time), or one a GPU plan writes:
 * its dispatches, then the packing into the kernel's mask (planners.ts), in the kernel's pass.
 * Counts: key blocks per query head, against the causal blocks of each head.
 */
export function blockSparseOp(
  ctx: GpuContext,
  call: AttentionCall,
  plan: (() => BlockMask) | MaskPlan,
): AttentionOp {
  const params = prefillParams(call);
  const buffers = (counts: GPUBuffer) => ({ ...attentionBuffers(call), counts });
  // The kernel's counts, one word per (head, query block), and their words after the submit.
  const countsFor = (geometry: MaskGeometry & { numQueryBlocks: number }) => {
    const rows = geometry.numHeads * geometry.numQueryBlocks;
    const counts = createEmptyBuffer(ctx.device, Math.max(1, rows) * 4, 'block-sparse counts');
    return { counts, words: countWords(ctx, call, counts, rows) };
  };
  if (typeof plan === 'function') {
    const start = performance.now();
    const mask = plan();
    const plannerMs = performance.now() - start;
    const { counts, words } = countsFor(mask);
    const kernel = recordBlockSparsePrefill(ctx, params, mask, buffers(counts));
    return {
      record: kernel.record,
      readCount: async () => ({ ...blockCounts(mask, await words()), plannerMs }),
      keptMask: async () => mask,
      dispose: () => {
        kernel.dispose();
        counts.destroy();
      },
    };
  }
  const packing = packTileMaskOnGpu(ctx, params, plan.source);
  const { geometry } = packing.outputs;
  const { counts, words } = countsFor(geometry);
  const kernel = recordBlockSparsePrefillOnTiles(ctx, params, packing.outputs, buffers(counts));
  return {
    plan: {
      record: (pass) => {
        plan.record(pass);
        packing.record(pass);
      },
    },
    record: kernel.record,
    readCount: async () => blockCounts(geometry, await words()),
    keptMask: plan.mask,
    dispose: () => {
      kernel.dispose();
      counts.destroy();
      packing.destroy();
      plan.destroy();
    },
  };
}

/**
 * The block-sparse kernel's counts (`words`, [head][query block]): key blocks per query head
 * against each head's causal ones.
 */
function blockCounts(
  geometry: MaskGeometry & { numQueryBlocks: number },
  words: Uint32Array,
): AttentionCount {
  const { numHeads, numQueryBlocks } = geometry;
  let causalPerHead = 0;
  for (let qb = 0; qb < numQueryBlocks; qb++) causalPerHead += causalKeyBlocks(geometry, qb);
  const touched = Array.from({ length: numHeads }, (_, h) =>
    sumOf(words.subarray(h * numQueryBlocks, (h + 1) * numQueryBlocks)),
  );
  return {
    unit: 'blocks',
    touched: sumOf(touched),
    total: causalPerHead * numHeads,
    perHead: { touched, total: touched.map(() => causalPerHead) },
  };
}

/** Dense causal prefill; it touches every causal (query, key) pair of every query head. */
export function densePrefillOp(ctx: GpuContext, call: AttentionCall): AttentionOp {
  const prefill = createDensePrefill(ctx, prefillParams(call), attentionBuffers(call));
  const { numQueries: n, qStart } = call;
  const pairs = n * qStart + (n * (n + 1)) / 2;
  const heads = call.shape.numHeads;
  return {
    ...prefill,
    readCount: async () => ({
      unit: 'tokens',
      touched: pairs * heads,
      total: pairs * heads,
      perHead: { touched: Array(heads).fill(pairs), total: Array(heads).fill(pairs) },
    }),
  };
}

/**
 * Dense split decode over `kvLen` tokens of the given pools: all of them, all but one gap per KV
 * head (sliding window + sinks, Ada-SnapKV), or a user pattern's key blocks; counts the tokens it
 * reads per KV head.
 */
export function denseDecodeOp(
  ctx: GpuContext,
  call: AttentionCall,
  pools: { kPool: GPUBuffer; vPool: GPUBuffer; pageTable: GPUBuffer; kvLen: number } = {
    ...call,
    kvLen: call.qStart + 1,
  },
  subset?: DecodeTokenSubset,
): AttentionOp {
  const heads = call.shape.numKvHeads;
  const read = tokensReadPerKvHead(pools.kvLen, heads, subset);
  const params = { ...decodeParams(call), kvLen: pools.kvLen };
  const buffers = {
    ...attentionBuffers(call),
    kPool: pools.kPool,
    vPool: pools.vPool,
    pageTable: pools.pageTable,
  };
  const decode = createDenseDecode(ctx, params, buffers, undefined, subset, call.scratch);
  const full = call.qStart + 1;
  return {
    record: decode.record,
    dispose: () => decode.scratch.forEach((b) => b.destroy()),
    readCount: async () => ({
      unit: 'tokens',
      touched: read.reduce((a, b) => a + b, 0),
      total: heads * full,
      perHead: { touched: read, total: Array(heads).fill(full) },
    }),
  };
}

/**
 * Vertical-Slash and FlexPrefill in the model: the GPU planner (planners.ts) on the chunk's last
 * queries against every key so far, its bitsets and block classes packed into the kernel's mask on
 * the GPU, then the block-sparse kernel. The planner marks columns in 32-key words, so blocks must
 * be 64 wide.
 */
export function verticalSlashPlanOp(
  ctx: GpuContext,
  method: string,
  call: AttentionCall,
  options: VerticalSlashPlanOptions | FlexPrefillPlanOptions,
): AttentionOp {
  const block = options.blockK ?? 64;
  if (block % 32 !== 0) {
    throw new Error(
      `prefill method '${method}' for layer ${call.layer}: the GPU planner needs 64-token ` +
        `blocks, got block = ${block} (set block to 64)`,
    );
  }
  const gpuPlan = planVerticalSlashOnGpu(
    ctx,
    prefillParams(call),
    attentionBuffers(call),
    options,
    call.scratch,
  );
  const { bits, keyWords, classes, numQueryBlocks, numKeyBlocks, blockQ, blockK } = gpuPlan.outputs;
  const { numHeads } = call.shape;
  const shape = maskShapeOf(call);
  return blockSparseOp(ctx, call, {
    record: gpuPlan.record,
    source: { kind: 'grid', plan: gpuPlan.outputs },
    destroy: gpuPlan.destroy,
    mask: async () => {
      const [bitWords, classWords] = await Promise.all([
        readU32(ctx, bits, 2 * numHeads * keyWords),
        readU32(ctx, classes, numHeads * numQueryBlocks * numKeyBlocks),
      ]);
      return verticalSlashMaskFromGrid(shape, blockQ, blockK, bitWords, classWords);
    },
  });
}

/** A method's phase hook, or a clear error naming the method and phase. */
export function requireHook<T>(hook: T | undefined, method: string, phase: Phase): T {
  if (!hook) throw new Error(`method '${method}' has no in-model ${phase} attention`);
  return hook;
}
