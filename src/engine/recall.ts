/**
 * Attention recall on the CPU from read-back queries and keys: the share of the dense softmax mass
 * that what a method kept carries, mean over heads, per query.
 *
 * Used where the attention-map kernel (src/kernels/attentionMap.ts) does not fit: long prompts,
 * where recall is measured on a seeded sample of query rows (always including the last) instead
 * of all of them. Everything here is float64 and pure.
 */
import { rowKeep, type BlockMask } from '../methods/reference/masks';
import { groupSize, type AttentionShape } from '../kernels/layout';
import { seededRandom } from './random';

/** Query rows sampled at long prompts: enough for a standard error of a few percent. */
export const DEFAULT_RECALL_QUERIES = 64;

/**
 * `count` distinct rows of 0 .. numRows - 1, ascending: the last row, plus one row drawn at random
 * (seeded) from each of count - 1 equal strata of the rows before it, so the sample spreads over
 * the whole prompt. All rows when count >= numRows.
 */
export function sampleQueryRows(numRows: number, count: number, seed: number): number[] {
  if (!Number.isInteger(numRows) || numRows < 1) {
    throw new Error(`recall: a prompt of ${numRows} rows has no query to sample`);
  }
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(
      `recall: the number of sampled queries must be a positive integer, got ${count}`,
    );
  }
  if (count >= numRows) return Array.from({ length: numRows }, (_, i) => i);
  const random = seededRandom(seed);
  const before = numRows - 1;
  const strata = count - 1;
  const rows: number[] = [];
  for (let s = 0; s < strata; s++) {
    // Strata boundaries are integers, so each stratum holds at least one row (strata < before).
    const first = Math.floor((s * before) / strata);
    const end = Math.floor(((s + 1) * before) / strata);
    rows.push(first + Math.floor(random() * (end - first)));
  }
  rows.push(numRows - 1);
  return rows;
}

export interface SampledRecallInput extends AttentionShape {
  /** q[row][head][dim] of the mask's query rows (row i at position mask.qStart + i). */
  q: ArrayLike<number>;
  /** Keys, contiguous token x kvHead x dim, at least mask.numKeys of them. */
  k: ArrayLike<number>;
  scale: number;
  /** What the method kept over the same query rows. */
  mask: BlockMask;
  /** Mask rows (0-based, relative to mask.qStart) to measure. */
  rows: readonly number[];
}

/**
 * Per sampled row, the dense softmax mass on the keys the mask keeps, mean over query heads (the
 * mean over rows is then the mean over queries and heads, as the method references define recall).
 */
export function recallOfRows(input: SampledRecallInput): Float64Array {
  const { q, k, scale, mask, rows, numHeads, numKvHeads, headDim } = input;
  if (mask.numHeads !== numHeads) {
    throw new Error(`recall: the mask covers ${mask.numHeads} heads, the queries ${numHeads}`);
  }
  const group = groupSize(input);
  const scores = new Float64Array(mask.numKeys);
  const keep = new Uint8Array(mask.numKeys);
  const perRow = new Float64Array(rows.length);
  rows.forEach((i, r) => {
    if (!Number.isInteger(i) || i < 0 || i >= mask.numQueries) {
      throw new Error(`recall: row ${i} is outside the mask's ${mask.numQueries} query rows`);
    }
    const keys = mask.qStart + i + 1;
    let sum = 0;
    for (let h = 0; h < numHeads; h++) {
      const qOffset = (i * numHeads + h) * headDim;
      const kvHead = Math.floor(h / group);
      let max = -Infinity;
      for (let t = 0; t < keys; t++) {
        const kOffset = (t * numKvHeads + kvHead) * headDim;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qOffset + d] * k[kOffset + d];
        scores[t] = dot * scale;
        if (scores[t] > max) max = scores[t];
      }
      rowKeep(mask, h, i, keep);
      let total = 0;
      let kept = 0;
      for (let t = 0; t < keys; t++) {
        const p = Math.exp(scores[t] - max);
        total += p;
        if (keep[t]) kept += p;
      }
      sum += kept / total;
    }
    perRow[r] = sum / numHeads;
  });
  return perRow;
}
