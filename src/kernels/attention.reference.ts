/**
 * Plain causal GQA attention on the CPU with float64 accumulation: the reference every attention
 * kernel is tested against. Layouts as in layout.ts, with K and V contiguous (token x kvHead x dim).
 */
import { groupSize, type AttentionShape } from './layout';

export interface ReferenceInput extends AttentionShape {
  q: ArrayLike<number>;
  k: ArrayLike<number>;
  v: ArrayLike<number>;
  numQueries: number;
  /** Absolute position of query 0; query i attends to keys 0 ..= qStart + i. */
  qStart: number;
  scale: number;
}

/** Returns out[query][head][dim]. */
export function attentionReference(input: ReferenceInput): Float64Array {
  const { q, k, v, numQueries, qStart, numHeads, numKvHeads, headDim, scale } = input;
  const group = groupSize(input);
  const out = new Float64Array(numQueries * numHeads * headDim);
  const scores = new Float64Array(qStart + numQueries);
  for (let i = 0; i < numQueries; i++) {
    const keys = qStart + i + 1;
    for (let h = 0; h < numHeads; h++) {
      const kvHead = Math.floor(h / group);
      const qOffset = (i * numHeads + h) * headDim;
      let max = -Infinity;
      for (let t = 0; t < keys; t++) {
        const kOffset = (t * numKvHeads + kvHead) * headDim;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qOffset + d] * k[kOffset + d];
        scores[t] = dot * scale;
        if (scores[t] > max) max = scores[t];
      }
      let sum = 0;
      for (let t = 0; t < keys; t++) {
        scores[t] = Math.exp(scores[t] - max);
        sum += scores[t];
      }
      for (let t = 0; t < keys; t++) {
        const weight = scores[t] / sum;
        const vOffset = (t * numKvHeads + kvHead) * headDim;
        for (let d = 0; d < headDim; d++) out[qOffset + d] += weight * v[vOffset + d];
      }
    }
  }
  return out;
}
