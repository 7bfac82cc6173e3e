/**
 * Ada-SnapKV, as the Sparse Frontier code runs it: importance is the maximum softmax weight over
 * the last `window` prompt queries and the group's query heads, pooled and forced like SnapKV.
 * The total budget capacity * numKvHeads is shared: each KV head first takes its
 * max(floor(minRatio * capacity), localWindow + prefixTokens) best tokens, then the remaining
 * budget goes to the highest remaining scores across all heads (ties: lower head, lower token).
 */
import type { ReferenceInput } from '../../kernels/attention.reference';
import { numKeysOf } from './masks';
import { topKIndices } from './select';
import {
  pooledWithForced,
  SNAPKV_DEFAULTS,
  windowImportance,
  type KvSelection,
  type SnapKVParams,
} from './snapKV';

export const ADA_SNAPKV_DEFAULTS = { ...SNAPKV_DEFAULTS, minRatio: 0.2 } as const;

export interface AdaSnapKVParams extends SnapKVParams {
  minRatio: number;
}

export interface AdaKvSelection extends KvSelection {
  /** Tokens kept per KV head. */
  budgets: number[];
  minPerHead: number;
}

export function adaSnapKV(
  input: ReferenceInput,
  params: AdaSnapKVParams = ADA_SNAPKV_DEFAULTS,
): AdaKvSelection {
  const numKeys = numKeysOf(input);
  const numKvHeads = input.numKvHeads;
  const capacity = Math.min(params.capacity, numKeys);
  const forced = params.localWindow + params.prefixTokens;
  const minPerHead = Math.min(
    capacity,
    Math.max(Math.floor(capacity * params.minRatio), Math.min(forced, numKeys)),
  );
  if (capacity < Math.min(numKeys, forced)) {
    throw new Error('capacity must cover localWindow + prefixTokens');
  }
  const scores = windowImportance(input, params.window, 'max').map((x) =>
    pooledWithForced(x, params),
  );
  const selected = scores.map((s) => topKIndices(s, minPerHead));
  const flat = new Float64Array(numKvHeads * numKeys);
  for (let g = 0; g < numKvHeads; g++) {
    flat.set(scores[g], g * numKeys);
    for (const t of selected[g]) flat[g * numKeys + t] = -Infinity;
  }
  for (const index of topKIndices(flat, (capacity - minPerHead) * numKvHeads)) {
    selected[Math.floor(index / numKeys)].push(index % numKeys);
  }
  const kept = selected.map((list) => list.sort((a, b) => a - b));
  return { kept, scores, budgets: kept.map((list) => list.length), minPerHead };
}

/** Same knob as SnapKV: the average per-head capacity is (1 - s) * length. */
export function paramsForSparsity(s: number, length: number): AdaSnapKVParams {
  const forced = ADA_SNAPKV_DEFAULTS.localWindow + ADA_SNAPKV_DEFAULTS.prefixTokens;
  return { ...ADA_SNAPKV_DEFAULTS, capacity: Math.max(forced, Math.round((1 - s) * length)) };
}
