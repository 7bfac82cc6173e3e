/**
 * The attention map on the CPU in float64: the reference the GPU kernel (attentionMap.ts) is tested
 * against. Probabilities element by element, pooled the same way; kept elements from the mask's own
 * reference (rowKeep).
 */
import { rowKeep, type BlockMask } from '../methods/reference/masks';
import { attentionMapDims } from './attentionMap';
import { groupSize, type AttentionShape } from './layout';

export interface AttentionMapReferenceInput extends AttentionShape {
  q: ArrayLike<number>;
  /** Contiguous token x kvHead x dim. */
  k: ArrayLike<number>;
  numQueries: number;
  qStart: number;
  scale: number;
  blockSize: number;
}

export interface AttentionMapReference {
  mass: Float64Array;
  kept: Float64Array | null;
  /** Per head: kept probability mass summed over rows, divided by the rows. */
  recall: Float64Array | null;
}

export function attentionMapReference(
  input: AttentionMapReferenceInput,
  keptMask?: BlockMask,
): AttentionMapReference {
  const { q, k, numQueries, qStart, numHeads, numKvHeads, headDim, scale, blockSize } = input;
  const group = groupSize(input);
  const { numQueryBlocks, numKeyBlocks } = attentionMapDims(input);
  const cells = numHeads * numQueryBlocks * numKeyBlocks;
  const mass = new Float64Array(cells);
  const kept = keptMask ? new Float64Array(cells) : null;
  const recall = keptMask ? new Float64Array(numHeads) : null;
  const probabilities = new Float64Array(qStart + numQueries);
  const keep = new Uint8Array(qStart + numQueries);
  for (let h = 0; h < numHeads; h++) {
    const kvHead = Math.floor(h / group);
    for (let i = 0; i < numQueries; i++) {
      const keys = qStart + i + 1;
      const qOffset = (i * numHeads + h) * headDim;
      let max = -Infinity;
      for (let t = 0; t < keys; t++) {
        const kOffset = (t * numKvHeads + kvHead) * headDim;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qOffset + d] * k[kOffset + d];
        probabilities[t] = dot * scale;
        max = Math.max(max, probabilities[t]);
      }
      let sum = 0;
      for (let t = 0; t < keys; t++) {
        probabilities[t] = Math.exp(probabilities[t] - max);
        sum += probabilities[t];
      }
      const qb = Math.floor(i / blockSize);
      const rows = Math.min(blockSize, numQueries - qb * blockSize);
      const rowBase = (h * numQueryBlocks + qb) * numKeyBlocks;
      if (keptMask) rowKeep(keptMask, h, i, keep);
      for (let t = 0; t < keys; t++) {
        const p = probabilities[t] / sum;
        const cell = rowBase + Math.floor(t / blockSize);
        mass[cell] += p / rows;
        if (kept && recall && keep[t]) {
          kept[cell] += p / rows;
          recall[h] += p / numQueries;
        }
      }
    }
  }
  return { mass, kept, recall };
}
