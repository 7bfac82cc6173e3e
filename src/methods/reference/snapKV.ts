/**
 * SnapKV (KV-cache eviction once, after prefill), as the Sparse Frontier code runs it: the last
 * `window` prompt queries' softmax over all keys (causal), averaged over the query heads of each
 * KV head's group and summed over the window, smoothed by 1-D average pooling (kernel `poolKernel`,
 * stride 1, zero padding of poolKernel / 2 counted in the mean, as avg_pool1d does), then per KV
 * head the `capacity` highest tokens are kept, the last `localWindow` and first `prefixTokens`
 * always. Decoding then reads only the kept tokens (plus the ones generated since).
 */
import { groupSize } from '../../kernels/layout';
import type { ReferenceInput } from '../../kernels/attention.reference';
import { blockMaskFromMaskMod, measuredSparsity, numKeysOf, type BlockMask } from './masks';
import { rowScores, sparseAttention } from './sparseAttention';
import { topKIndices } from './select';

export const SNAPKV_DEFAULTS = {
  capacity: 1024,
  window: 256,
  poolKernel: 21,
  localWindow: 128,
  prefixTokens: 4,
} as const;

export interface SnapKVParams {
  /** Tokens kept per KV head (clamped to the prompt length). */
  capacity: number;
  window: number;
  /** Odd, so that pooling keeps the length. */
  poolKernel: number;
  localWindow: number;
  prefixTokens: number;
}

/**
 * Softmax weights of the last `window` prompt queries, reduced per KV head: 'mean-sum' averages
 * over the group's heads and sums over the window (SnapKV); 'max' takes the maximum over both
 * (Ada-SnapKV).
 */
export function windowImportance(
  input: ReferenceInput,
  window: number,
  reduce: 'mean-sum' | 'max',
): Float64Array[] {
  const { numHeads, numKvHeads, numQueries, qStart } = input;
  const group = groupSize(input);
  const numKeys = numKeysOf(input);
  const importance = Array.from({ length: numKvHeads }, () => new Float64Array(numKeys));
  const scores = new Float64Array(numKeys);
  for (let i = numQueries - Math.min(window, numQueries); i < numQueries; i++) {
    const keys = qStart + i + 1;
    for (let h = 0; h < numHeads; h++) {
      const row = importance[Math.floor(h / group)];
      rowScores(input, i, h, scores);
      let max = -Infinity;
      for (let t = 0; t < keys; t++) max = Math.max(max, scores[t]);
      let sum = 0;
      for (let t = 0; t < keys; t++) {
        scores[t] = Math.exp(scores[t] - max);
        sum += scores[t];
      }
      for (let t = 0; t < keys; t++) {
        const p = scores[t] / sum;
        if (reduce === 'max') row[t] = Math.max(row[t], p);
        else row[t] += p / group;
      }
    }
  }
  return importance;
}

/** avg_pool1d(kernel, stride 1, padding kernel / 2, count_include_pad): same length for odd kernels. */
export function averagePool(x: Float64Array, kernel: number): Float64Array {
  if (kernel % 2 !== 1) throw new Error('poolKernel must be odd');
  const half = (kernel - 1) / 2;
  const out = new Float64Array(x.length);
  for (let t = 0; t < x.length; t++) {
    let sum = 0;
    for (let u = Math.max(0, t - half); u <= Math.min(x.length - 1, t + half); u++) sum += x[u];
    out[t] = sum / kernel;
  }
  return out;
}

/** Pooled importance with the always-kept tokens forced to +Infinity. */
export function pooledWithForced(
  importance: Float64Array,
  params: Pick<SnapKVParams, 'poolKernel' | 'localWindow' | 'prefixTokens'>,
): Float64Array {
  const pooled = averagePool(importance, params.poolKernel);
  pooled.fill(Infinity, Math.max(0, pooled.length - params.localWindow));
  pooled.fill(Infinity, 0, Math.min(params.prefixTokens, pooled.length));
  return pooled;
}

export interface KvSelection {
  /** kept[kvHead]: prompt token indices kept, ascending. */
  kept: number[][];
  /** Pooled importance per KV head (forced tokens at +Infinity). */
  scores: Float64Array[];
}

export function snapKV(input: ReferenceInput, params: SnapKVParams = SNAPKV_DEFAULTS): KvSelection {
  const numKeys = numKeysOf(input);
  const capacity = Math.min(params.capacity, numKeys);
  if (capacity < Math.min(numKeys, params.localWindow + params.prefixTokens)) {
    throw new Error('capacity must cover localWindow + prefixTokens');
  }
  const scores = windowImportance(input, params.window, 'mean-sum').map((x) =>
    pooledWithForced(x, params),
  );
  const kept = scores.map((s) => topKIndices(s, capacity).sort((a, b) => a - b));
  return { kept, scores };
}

export interface CompactedDecodeResult {
  mask: BlockMask;
  sparsity: number;
  out: Float64Array;
  recall: Float64Array;
  meanRecall: Float64Array;
}

/**
 * One decode query (qStart = current length - 1) against the compacted cache: prompt tokens
 * (< promptLength) only where kept[kvHead] holds them, later tokens always. blockK only shapes
 * the mask; the kept set is token-exact.
 */
export function compactedDecode(
  input: ReferenceInput,
  kept: number[][],
  promptLength: number,
  blockK = 16,
): CompactedDecodeResult {
  if (input.numQueries !== 1) throw new Error('decode takes exactly one query');
  const group = groupSize(input);
  const keptSets = kept.map((list) => new Set(list));
  const mask = blockMaskFromMaskMod(
    { numHeads: input.numHeads, numQueries: 1, qStart: input.qStart, blockQ: 1, blockK },
    (_b, h, _q, kv) => kv >= promptLength || keptSets[Math.floor(h / group)].has(kv),
  );
  return { mask, sparsity: measuredSparsity(mask), ...sparseAttention(input, mask) };
}

/** The paper's knob: sparsity = 1 - capacity / length (at least the always-kept tokens). */
export function paramsForSparsity(s: number, length: number): SnapKVParams {
  const forced = SNAPKV_DEFAULTS.localWindow + SNAPKV_DEFAULTS.prefixTokens;
  return { ...SNAPKV_DEFAULTS, capacity: Math.max(forced, Math.round((1 - s) * length)) };
}
