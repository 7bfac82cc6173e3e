/**
 * The tensor layouts the attention kernels read and write; the model runtime produces them.
 *
 * Queries and outputs (f32, row-major): q[query][head][dim], numQueries x numHeads x headDim. Query
 * i sits at absolute position qStart + i and attends causally to keys 0 ..= qStart + i. Decode is
 * the case numQueries = 1, qStart = kvLen - 1.
 *
 * Keys and values live in a paged KV cache, one K pool and one V pool per layer:
 *   pool[physicalPage][kvHead][slot][dim], pageSize slots per page,
 * as f32, or as f16 pairs packed in u32 words (dims 2j and 2j+1 in the low and high halves, so a
 * token's head row is headDim / 2 words). A sequence's page table maps its logical page p (tokens
 * p*pageSize ... p*pageSize + pageSize - 1) to a physical page of the pool. Query head h reads KV
 * head floor(h / (numHeads / numKvHeads)) (GQA).
 */
export type KvDtype = 'f32' | 'f16';

export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

export interface PagedKvLayout {
  pageSize: number;
  numKvHeads: number;
  headDim: number;
  dtype: KvDtype;
}

export function groupSize(shape: AttentionShape): number {
  if (shape.numHeads % shape.numKvHeads !== 0) {
    throw new Error(
      `numHeads (${shape.numHeads}) must be a multiple of numKvHeads (${shape.numKvHeads})`,
    );
  }
  return shape.numHeads / shape.numKvHeads;
}

/** 32-bit words one page of one pool takes. */
export function wordsPerPage(layout: PagedKvLayout): number {
  const perToken = layout.dtype === 'f16' ? layout.headDim / 2 : layout.headDim;
  return layout.numKvHeads * layout.pageSize * perToken;
}

export function defaultScale(headDim: number): number {
  return 1 / Math.sqrt(headDim);
}
