/**
 * Packs contiguous keys or values (token x kvHead x dim, f32) into the paged pool layout of
 * layout.ts, in a given physical page order, for tests, benchmarks and the model's KV cache.
 */
import { packFloat16Pairs } from '../gpu/f16';
import { wordsPerPage, type PagedKvLayout } from './layout';

export interface PagedPool {
  /** f32 values, or u32 words of f16 pairs. */
  data: Float32Array | Uint32Array;
  numPages: number;
}

export function pagesFor(kvLen: number, pageSize: number): number {
  return Math.ceil(kvLen / pageSize);
}

/**
 * `pageTable[logical] = physical`; the pool has max(pageTable) + 1 pages. Slots past kvLen are 0.
 */
export function packPagedPool(
  values: Float32Array,
  kvLen: number,
  layout: PagedKvLayout,
  pageTable: Uint32Array,
): PagedPool {
  const { pageSize, numKvHeads, headDim } = layout;
  if (pageTable.length < pagesFor(kvLen, pageSize)) throw new Error('page table too short');
  const numPages = pageTable.reduce((max, page) => Math.max(max, page + 1), 0);
  const f32 = new Float32Array(numPages * numKvHeads * pageSize * headDim);
  for (let t = 0; t < kvLen; t++) {
    const page = pageTable[Math.floor(t / pageSize)];
    const slot = t % pageSize;
    for (let h = 0; h < numKvHeads; h++) {
      const src = (t * numKvHeads + h) * headDim;
      const dst = ((page * numKvHeads + h) * pageSize + slot) * headDim;
      f32.set(values.subarray(src, src + headDim), dst);
    }
  }
  const data = layout.dtype === 'f16' ? packFloat16Pairs(f32) : f32;
  if (data.length !== numPages * wordsPerPage(layout)) throw new Error('pool size mismatch');
  return { data, numPages };
}

/** A page table that scatters logical pages over physical ones, to exercise the indirection. */
export function shuffledPageTable(numPages: number, seed = 1): Uint32Array {
  const table = Uint32Array.from({ length: numPages }, (_, i) => i);
  let state = seed >>> 0 || 1;
  for (let i = numPages - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [table[i], table[j]] = [table[j], table[i]];
  }
  return table;
}
