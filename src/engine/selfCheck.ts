/**
 * The dense-attention self-check: a few small seeded shapes through the GPU launchers, compared
 * with the float64 CPU reference. Pure logic over a GpuContext, so it runs in the page and in Node.
 */
import type { GpuContext } from '../gpu/context';
import { roundToFloat16 } from '../gpu/f16';
import { attentionReference } from '../kernels/attention.reference';
import { denseDecodeOnHost } from '../kernels/denseDecode';
import { densePrefillOnHost } from '../kernels/densePrefill';
import { defaultScale, type KvDtype } from '../kernels/layout';
import { maxAbsError } from '../kernels/compare';
import { pagesFor, shuffledPageTable } from '../kernels/pagedKv';
import { randomFloats } from './random';

export interface SelfCheckCase {
  name: string;
  kind: 'prefill' | 'decode';
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Queries in the batch; decode has 1. */
  numQueries: number;
  /** Tokens in the KV cache; the queries are its last numQueries positions. */
  kvLen: number;
  pageSize: number;
  dtype: KvDtype;
  /** Scatter the logical pages over the pool, to exercise the page table. */
  shuffledPages: boolean;
  seed: number;
}

export interface SelfCheckResult {
  name: string;
  shape: string;
  dtype: KvDtype;
  /** Largest |gpu - reference| over the output. */
  maxAbsError: number;
  /** Largest |reference| over the output. */
  magnitude: number;
  relativeError: number;
  tolerance: number;
  passed: boolean;
  /** Set when the launcher threw instead of returning an output. */
  error?: string;
}

/** Relative tolerance per KV dtype (f16 K/V are compared with a reference on the same rounding). */
export const selfCheckTolerance: Record<KvDtype, number> = { f32: 1e-4, f16: 5e-3 };

// The embedded default model's attention shape (8 query heads over 4 KV heads, d 32), for prefill
// and decode. The check runs at every page load, and on a software GPU a d 128 decode variant takes
// 5-10 s to compile (SwiftShader); the kernel tests cover head dims 32 to 128.
const attention = { numHeads: 8, numKvHeads: 4, headDim: 32, pageSize: 16 } as const;
const prefill = { ...attention, kind: 'prefill' } as const;
const decode = { ...attention, kind: 'decode' } as const;

export const selfCheckCases: readonly SelfCheckCase[] = [
  {
    ...prefill,
    name: 'Prefill, f32 KV',
    numQueries: 37,
    kvLen: 37,
    dtype: 'f32',
    shuffledPages: false,
    seed: 11,
  },
  {
    ...prefill,
    name: 'Chunked prefill, f16 KV',
    numQueries: 37,
    kvLen: 48,
    dtype: 'f16',
    shuffledPages: true,
    seed: 12,
  },
  {
    ...decode,
    name: 'Decode, f32 KV',
    numQueries: 1,
    kvLen: 300,
    dtype: 'f32',
    shuffledPages: true,
    seed: 13,
  },
  {
    ...decode,
    name: 'Decode, f16 KV',
    numQueries: 1,
    kvLen: 300,
    dtype: 'f16',
    shuffledPages: true,
    seed: 14,
  },
];

export function describeShape(c: SelfCheckCase): string {
  const tokens =
    c.kind === 'decode'
      ? `1 query over ${c.kvLen} keys`
      : `${c.numQueries} queries at positions ${c.kvLen - c.numQueries}–${c.kvLen - 1}`;
  const pages = `page ${c.pageSize}${c.shuffledPages ? ', shuffled pages' : ''}`;
  return `${tokens}, ${c.numHeads} heads / ${c.numKvHeads} KV heads, d ${c.headDim}, ${pages}`;
}

async function runGpu(
  ctx: GpuContext,
  c: SelfCheckCase,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
) {
  const kv = { pageSize: c.pageSize, numKvHeads: c.numKvHeads, headDim: c.headDim, dtype: c.dtype };
  const shape = { numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim };
  const scale = defaultScale(c.headDim);
  const pages = pagesFor(c.kvLen, c.pageSize);
  const pageTable = c.shuffledPages ? shuffledPageTable(pages, c.seed) : undefined;
  if (c.kind === 'decode') {
    return denseDecodeOnHost(ctx, { ...shape, kvLen: c.kvLen, scale, kv, q, k, v, pageTable });
  }
  const qStart = c.kvLen - c.numQueries;
  return densePrefillOnHost(ctx, {
    ...shape,
    numQueries: c.numQueries,
    qStart,
    scale,
    kv,
    q,
    k,
    v,
    pageTable,
  });
}

export async function runSelfCheckCase(
  ctx: GpuContext,
  c: SelfCheckCase,
): Promise<SelfCheckResult> {
  const q = randomFloats(c.numQueries * c.numHeads * c.headDim, c.seed, 2);
  const k = randomFloats(c.kvLen * c.numKvHeads * c.headDim, c.seed + 1000);
  const v = randomFloats(c.kvLen * c.numKvHeads * c.headDim, c.seed + 2000);
  const tolerance = selfCheckTolerance[c.dtype];
  const base = { name: c.name, shape: describeShape(c), dtype: c.dtype, tolerance };
  try {
    const actual = await runGpu(ctx, c, q, k, v);
    const rounded = c.dtype === 'f16';
    const expected = attentionReference({
      numHeads: c.numHeads,
      numKvHeads: c.numKvHeads,
      headDim: c.headDim,
      numQueries: c.numQueries,
      qStart: c.kvLen - c.numQueries,
      scale: defaultScale(c.headDim),
      q,
      k: rounded ? roundToFloat16(k) : k,
      v: rounded ? roundToFloat16(v) : v,
    });
    const { error, magnitude } = maxAbsError(actual, expected);
    const relativeError = error / Math.max(magnitude, Number.MIN_VALUE);
    return {
      ...base,
      maxAbsError: error,
      magnitude,
      relativeError,
      passed: relativeError <= tolerance,
    };
  } catch (error) {
    return {
      ...base,
      maxAbsError: NaN,
      magnitude: NaN,
      relativeError: NaN,
      passed: false,
      error: error instanceof Error ? error.message : String(error),
    };
  }
}

/** Runs the cases one after another, reporting each result as it comes. */
export async function runSelfCheck(
  ctx: GpuContext,
  onResult: (result: SelfCheckResult, index: number) => void = () => {},
  cases: readonly SelfCheckCase[] = selfCheckCases,
): Promise<SelfCheckResult[]> {
  const results: SelfCheckResult[] = [];
  for (const [index, c] of cases.entries()) {
    const result = await runSelfCheckCase(ctx, c);
    results.push(result);
    onResult(result, index);
  }
  return results;
}
