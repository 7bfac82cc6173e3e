/**
 * What the benchmark's sections (src/cli/bench.ts, benchMethods.ts) share: the row they report, and
 * their inputs: filled paged KV caches and queries, uniform filler where only the time matters, and
 * structured inputs where a method's choices depend on the attention's structure (planners,
 * BLASST's threshold).
 */
import { createEmptyBuffer, createStorageBuffer } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import { packPagedPool } from '../kernels/pagedKv';
import {
  defaultScale,
  type AttentionShape,
  type KvDtype,
  type PagedKvLayout,
} from '../kernels/layout';

export interface BenchRow {
  kernel: string;
  /** Sparse rows: the sparsity asked for, the sparsity the kernel counted, and the dense time. */
  targetSparsity?: number;
  measuredSparsity?: number;
  plannerMs?: number;
  speedup?: number;
  shape: string;
  length: number;
  kvDtype?: KvDtype;
  ms: number;
  tflops?: number;
  gbPerSecond?: number;
  shareOfCopy?: number;
  /** Registry rows: CPU milliseconds of the planner (mask building), apart from plannerMs (GPU). */
  plannerCpuMs?: number;
  /** Registry rows: dense time over planner (GPU) + kernel time. */
  speedupWithPlanner?: number;
  /** Model rows: tokens/s from GPU time (timestamp queries) and from wall-clock time. */
  tokensPerSecond?: number;
  wallTokensPerSecond?: number;
  config?: unknown;
}

/** Tokens per page of every benchmark cache. */
export const pageSize = 16;

/** Deterministic, cheap filler: benchmark timings do not depend on the values. */
export function filledFloats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2147483648 - 1;
  }
  return out;
}

/** u32 words holding two f16 values in [-2, 2]: the packed KV layout, without a conversion pass. */
export function filledHalfPairs(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let state = seed >>> 0;
  const half = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return ((state >>> 16) & 0x83ff) | ((12 + ((state >>> 8) & 3)) << 10);
  };
  for (let i = 0; i < n; i++) out[i] = (half() | (half() << 16)) >>> 0;
  return out;
}

export function poolBuffer(ctx: GpuContext, layout: PagedKvLayout, numPages: number, seed: number) {
  const perToken = layout.dtype === 'f16' ? layout.headDim / 2 : layout.headDim;
  const words = numPages * layout.numKvHeads * layout.pageSize * perToken;
  const data = layout.dtype === 'f16' ? filledHalfPairs(words, seed) : filledFloats(words, seed);
  return createStorageBuffer(ctx.device, data);
}

export const identityPageTable = (pages: number) =>
  Uint32Array.from({ length: pages }, (_, i) => i);

/**
 * Filled inputs for attention over `length` keys in the paged layout (identity page table): the
 * prefill variant holds a query per key, the decode variant one query per head.
 */
export function attentionInputs(
  ctx: GpuContext,
  shape: AttentionShape,
  length: number,
  phase: 'prefill' | 'decode',
  dtype: KvDtype,
) {
  const kv: PagedKvLayout = {
    pageSize,
    numKvHeads: shape.numKvHeads,
    headDim: shape.headDim,
    dtype,
  };
  const pages = Math.ceil(length / pageSize);
  const queries = phase === 'prefill' ? length : 1;
  const rowFloats = queries * shape.numHeads * shape.headDim;
  const buffers = {
    q: createStorageBuffer(ctx.device, filledFloats(rowFloats, 1)),
    kPool: poolBuffer(ctx, kv, pages, 2),
    vPool: poolBuffer(ctx, kv, pages, 3),
    pageTable: createStorageBuffer(ctx.device, identityPageTable(pages)),
    out: createEmptyBuffer(ctx.device, rowFloats * 4),
  };
  const scale = defaultScale(shape.headDim);
  return {
    kv,
    pages,
    buffers,
    prefill: { ...shape, numQueries: length, qStart: 0, scale, kv },
    decode: { ...shape, kvLen: length, scale, kv },
    destroy: () => Object.values(buffers).forEach((buffer) => buffer.destroy()),
  };
}

const rotaryPairs = 16;
const heavyDim = 2 * rotaryPairs;
const structuredColumns = 8;
/** The structured queries' heavy component (every query has it). */
const queryHeavy = 4;

/**
 * Rows of `positions` tokens from position firstPosition on (queries or keys of the structured
 * inputs): noise, the rotary pairs, and heavy(t, head) in the heavy dimension.
 */
export function structuredRows(
  positions: number,
  firstPosition: number,
  heads: number,
  headDim: number,
  seed: number,
  heavy: (t: number, head: number) => number,
): Float32Array {
  const amplitude = Math.sqrt(8 / (rotaryPairs * defaultScale(headDim)));
  // Uniform noise everywhere, then the rotary pairs and the heavy dimension written over it.
  const out = filledFloats(positions * heads * headDim, seed);
  for (let i = 0; i < positions; i++) {
    const t = firstPosition + i;
    for (let h = 0; h < heads; h++) {
      const row = (i * heads + h) * headDim;
      for (let j = 0; j < rotaryPairs; j++) {
        const angle = t * 10000 ** (-j / rotaryPairs);
        out[row + 2 * j] = amplitude * Math.cos(angle);
        out[row + 2 * j + 1] = amplitude * Math.sin(angle);
      }
      out[row + heavyDim] = heavy(t, h);
    }
  }
  return out;
}

/**
 * Attention inputs shaped like a real LLM head's, for the planners and BLASST (random filler attends
 * almost uniformly, and then no block falls below the running max). Dimensions 0..31 are 16 rotary
 * pairs with RoPE's frequencies, the same in q and k, so q.k = R^2 sum_j cos(w_j (t - s)) peaks on
 * the diagonal and decays with distance: a local window. Dimension 32 carries a heavy component:
 * every query has it, the first 4 keys (sinks) and 8 keys per KV head at seeded positions (columns)
 * answer it. The rest is uniform noise. Scaled scores: sinks about 10, columns 9, the diagonal 8,
 * far keys 0 +- 0.3.
 */
/** Structured queries at positions firstPosition .. firstPosition + count - 1. */
export function structuredQueries(
  shape: AttentionShape,
  count: number,
  firstPosition: number,
): Float32Array {
  return structuredRows(count, firstPosition, shape.numHeads, shape.headDim, 1, () => queryHeavy);
}

export function structuredInputs(
  ctx: GpuContext,
  shape: AttentionShape,
  length: number,
  phase: 'prefill' | 'decode',
  dtype: KvDtype,
) {
  const { numKvHeads, headDim } = shape;
  const scale = defaultScale(headDim);
  const sinkHeavy = 10 / (scale * queryHeavy);
  const columnHeavy = 9 / (scale * queryHeavy);
  const columns = Array.from({ length: numKvHeads }, (_, h) => {
    const positions = filledFloats(structuredColumns, 100 + h);
    return new Set(Array.from(positions, (x) => 4 + Math.floor(((x + 1) / 2) * (length - 4))));
  });
  const queries = phase === 'prefill' ? length : 1;
  const q = structuredQueries(shape, queries, length - queries);
  const k = structuredRows(length, 0, numKvHeads, headDim, 2, (t, h) =>
    t < 4 ? sinkHeavy : columns[h].has(t) ? columnHeavy : 0,
  );
  const v = filledFloats(length * numKvHeads * headDim, 3);
  const kv: PagedKvLayout = { pageSize, numKvHeads, headDim, dtype };
  const pages = Math.ceil(length / pageSize);
  const table = identityPageTable(pages);
  const buffers = {
    q: createStorageBuffer(ctx.device, q),
    kPool: createStorageBuffer(ctx.device, packPagedPool(k, length, kv, table).data),
    vPool: createStorageBuffer(ctx.device, packPagedPool(v, length, kv, table).data),
    pageTable: createStorageBuffer(ctx.device, table),
    out: createEmptyBuffer(ctx.device, q.length * 4),
  };
  return {
    kv,
    pages,
    buffers,
    /** Row t of K and V (f32): a decode step's new token, for methods that append it themselves. */
    kvRow: (t: number) => ({
      k: k.subarray(t * numKvHeads * headDim, (t + 1) * numKvHeads * headDim),
      v: v.subarray(t * numKvHeads * headDim, (t + 1) * numKvHeads * headDim),
    }),
    prefill: { ...shape, numQueries: length, qStart: 0, scale, kv },
    decode: { ...shape, kvLen: length, scale, kv },
    destroy: () => Object.values(buffers).forEach((buffer) => buffer.destroy()),
  };
}
