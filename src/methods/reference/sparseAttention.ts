/**
 * Causal GQA attention restricted to a block mask, in float64: what every sparse prefill or decode
 * kernel is tested against. Also measures attention recall: for each (query, head), the share of
 * the dense softmax mass that the kept keys carry.
 */
import { groupSize } from '../../kernels/layout';
import type { ReferenceInput } from '../../kernels/attention.reference';
import { rowKeep, type BlockMask } from './masks';

export interface SparseAttentionResult {
  /** out[query][head][dim]; a row with no kept key is 0. */
  out: Float64Array;
  /** recall[query][head] in [0, 1]. */
  recall: Float64Array;
  /** Mean of recall over queries, per head. */
  meanRecall: Float64Array;
}

export function checkMaskMatches(input: ReferenceInput, mask: BlockMask): void {
  if (
    mask.numHeads !== input.numHeads ||
    mask.numQueries !== input.numQueries ||
    mask.qStart !== input.qStart
  ) {
    throw new Error('block mask shape does not match the attention input');
  }
}

/** Scaled scores of query row i, head h, against keys 0 ..= qStart + i. */
export function rowScores(input: ReferenceInput, i: number, h: number, scores: Float64Array): void {
  const { q, k, numHeads, numKvHeads, headDim, qStart, scale } = input;
  const kvHead = Math.floor(h / groupSize(input));
  const qOffset = (i * numHeads + h) * headDim;
  for (let t = 0; t <= qStart + i; t++) {
    const kOffset = (t * numKvHeads + kvHead) * headDim;
    let dot = 0;
    for (let d = 0; d < headDim; d++) dot += q[qOffset + d] * k[kOffset + d];
    scores[t] = dot * scale;
  }
}

/** Dense softmax mass of the keys with keep[t] = 1, for one row of scaled scores. */
export function recallOfRow(scores: Float64Array, keys: number, keep: Uint8Array): number {
  let max = -Infinity;
  for (let t = 0; t < keys; t++) max = Math.max(max, scores[t]);
  let total = 0;
  let kept = 0;
  for (let t = 0; t < keys; t++) {
    const p = Math.exp(scores[t] - max);
    total += p;
    if (keep[t]) kept += p;
  }
  return kept / total;
}

export function sparseAttention(input: ReferenceInput, mask: BlockMask): SparseAttentionResult {
  checkMaskMatches(input, mask);
  const { v, numQueries, qStart, numHeads, numKvHeads, headDim } = input;
  const group = groupSize(input);
  const out = new Float64Array(numQueries * numHeads * headDim);
  const recall = new Float64Array(numQueries * numHeads);
  const meanRecall = new Float64Array(numHeads);
  const scores = new Float64Array(qStart + numQueries);
  const keep = new Uint8Array(qStart + numQueries);
  for (let i = 0; i < numQueries; i++) {
    const keys = qStart + i + 1;
    for (let h = 0; h < numHeads; h++) {
      const kvHead = Math.floor(h / group);
      const oOffset = (i * numHeads + h) * headDim;
      rowScores(input, i, h, scores);
      rowKeep(mask, h, i, keep);
      recall[i * numHeads + h] = recallOfRow(scores, keys, keep);
      // Same operation order as attentionReference, so a fully kept mask reproduces it bit for bit.
      let max = -Infinity;
      for (let t = 0; t < keys; t++) if (keep[t] && scores[t] > max) max = scores[t];
      if (max === -Infinity) continue;
      let sum = 0;
      for (let t = 0; t < keys; t++) {
        if (!keep[t]) continue;
        scores[t] = Math.exp(scores[t] - max);
        sum += scores[t];
      }
      for (let t = 0; t < keys; t++) {
        if (!keep[t]) continue;
        const weight = scores[t] / sum;
        const vOffset = (t * numKvHeads + kvHead) * headDim;
        for (let d = 0; d < headDim; d++) out[oOffset + d] += weight * v[vOffset + d];
      }
    }
  }
  for (let h = 0; h < numHeads; h++) {
    let sum = 0;
    for (let i = 0; i < numQueries; i++) sum += recall[i * numHeads + h];
    meanRecall[h] = numQueries > 0 ? sum / numQueries : 1;
  }
  return { out, recall, meanRecall };
}
