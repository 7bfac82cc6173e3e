/**
 * Block-Sparse (MInference's block_sparse_attention as the Sparse Frontier code configures it):
 * Q and K are mean-pooled per block of `chunkSize` tokens, a key block's score for a query block
 * is pooled q . pooled k (no scale, no softmax), and each query block keeps its `topChunks` best
 * causal key blocks, with the first block, the diagonal block and the block just before it always
 * among them. Query blocks with at most topChunks causal key blocks stay dense.
 *
 * GQA: chosen per query head (the paper's code runs head by head with the head's KV head).
 */
import { groupSize } from '../../kernels/layout';
import type { ReferenceInput } from '../../kernels/attention.reference';
import { blockMaskFromLists, ceilDiv, numKeysOf, type BlockMask } from './masks';
import { closestOnDecreasing, topKIndices } from './select';

export const BLOCK_SPARSE_DEFAULTS = { chunkSize: 16, topChunks: 64 } as const;

export interface BlockSparseParams {
  chunkSize: number;
  topChunks: number;
}

export interface BlockSparseSelection {
  /** blocks[h][qb]: kept key blocks, ascending. */
  blocks: number[][][];
  /** scores[h][qb][kb] for causal kb: pooled q . pooled k. */
  scores: Float64Array[][];
  mask: BlockMask;
}

/**
 * Mean over the block's tokens, dividing by the full block size: the reference zero-pads the
 * sequence to whole blocks before pooling, so a short last block is scaled down the same way.
 */
function poolRows(
  data: ArrayLike<number>,
  rowStride: number,
  offset: number,
  first: number,
  end: number,
  blockSize: number,
  headDim: number,
): Float64Array {
  const pooled = new Float64Array(headDim);
  for (let r = first; r < end; r++) {
    for (let d = 0; d < headDim; d++) pooled[d] += data[r * rowStride + offset + d];
  }
  for (let d = 0; d < headDim; d++) pooled[d] /= blockSize;
  return pooled;
}

export function blockSparse(
  input: ReferenceInput,
  params: BlockSparseParams = BLOCK_SPARSE_DEFAULTS,
): BlockSparseSelection {
  const { q, k, numHeads, numKvHeads, headDim, numQueries, qStart } = input;
  const b = params.chunkSize;
  if (qStart % b !== 0) throw new Error('block-sparse needs qStart to be a multiple of chunkSize');
  if (params.topChunks < 3) throw new Error('topChunks must be at least 3 (the forced blocks)');
  const numKeys = numKeysOf(input);
  const group = groupSize(input);
  const firstBlock = qStart / b;
  const numQueryBlocks = ceilDiv(numQueries, b);
  const blocks: number[][][] = [];
  const scores: Float64Array[][] = [];
  for (let h = 0; h < numHeads; h++) {
    const kvHead = Math.floor(h / group);
    const pooledK: Float64Array[] = [];
    for (let kb = 0; kb < ceilDiv(numKeys, b); kb++) {
      const end = Math.min(numKeys, (kb + 1) * b);
      pooledK.push(poolRows(k, numKvHeads * headDim, kvHead * headDim, kb * b, end, b, headDim));
    }
    const headBlocks: number[][] = [];
    const headScores: Float64Array[] = [];
    for (let qb = 0; qb < numQueryBlocks; qb++) {
      const end = Math.min(numQueries, (qb + 1) * b);
      const pooledQ = poolRows(q, numHeads * headDim, h * headDim, qb * b, end, b, headDim);
      const diagonal = firstBlock + qb;
      const blockScores = new Float64Array(diagonal + 1);
      for (let kb = 0; kb <= diagonal; kb++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += pooledQ[d] * pooledK[kb][d];
        blockScores[kb] = dot;
      }
      const boosted = Float64Array.from(blockScores);
      for (const forced of [0, diagonal - 1, diagonal]) if (forced >= 0) boosted[forced] = Infinity;
      headBlocks.push(topKIndices(boosted, params.topChunks).sort((x, y) => x - y));
      headScores.push(blockScores);
    }
    blocks.push(headBlocks);
    scores.push(headScores);
  }
  const mask = blockMaskFromLists(
    { numHeads, numQueries, qStart, blockQ: b, blockK: b },
    (h, qb) => blocks[h][qb],
  );
  return { blocks, scores, mask };
}

/**
 * The paper's block-level sparsity of a prefill of numBlocks blocks: query block m keeps
 * min(m + 1, topChunks) of its m + 1 causal blocks.
 */
export function nominalSparsity(numBlocks: number, topChunks: number): number {
  const t = Math.min(topChunks, numBlocks);
  const selected = (t * (t + 1)) / 2 + (numBlocks - t) * t;
  return 1 - selected / ((numBlocks * (numBlocks + 1)) / 2);
}

/** topChunks in [3, numBlocks] whose nominal sparsity is closest to s (the paper's search). */
export function paramsForSparsity(s: number, length: number): BlockSparseParams {
  const chunkSize = BLOCK_SPARSE_DEFAULTS.chunkSize;
  const numBlocks = ceilDiv(length, chunkSize);
  const topChunks = closestOnDecreasing(Math.min(3, numBlocks), numBlocks, s, (t) =>
    nominalSparsity(numBlocks, t),
  );
  return { chunkSize, topChunks: Math.max(3, topChunks) };
}
