/**
 * BLASST: block skipping inside the online-softmax loop, in float64. A row group (the rows one
 * workgroup owns: a query block of `blockQ` rows of one head) visits its causal key blocks of
 * `blockK` keys; for each it computes the scaled scores and each row's block max m_blk, then skips
 * the block (no exp, no row sum, no V load, no P.V) when every row of the group votes skip:
 * exp(m_blk - m) < lambda, with m the row's running max (a row with no causal key in the block
 * votes skip; a row with nothing seen yet votes keep). The decision is uniform over the group so
 * that the kernel really saves the V load. lambda = 0 skips nothing.
 */
import { groupSize } from '../../kernels/layout';
import type { ReferenceInput } from '../../kernels/attention.reference';
import { blockMaskFromLists, causalKeyBlocks, ceilDiv, type BlockMask } from './masks';
import { sparseAttention } from './sparseAttention';

/** 'sink-recent-first': the diagonal (most recent) block, then block 0, then the rest ascending. */
export type BlasstOrder = 'natural' | 'sink-recent-first';

export const BLASST_DEFAULTS = {
  blockQ: 64,
  blockK: 64,
  order: 'natural',
} as const satisfies Partial<BlasstParams>;

export interface BlasstParams {
  blockQ: number;
  blockK: number;
  order: BlasstOrder;
  /** Fixed threshold; the paper calibrates lambda = a / L per model (see lambdaForLength). */
  lambda: number;
}

/** The paper's calibrated form: the threshold falls inversely with the context length. */
export function lambdaForLength(a: number, length: number): number {
  return a / length;
}

export interface BlasstResult {
  /** out[query][head][dim] from the online-softmax loop itself. */
  out: Float64Array;
  /** Per head, (row group, key block) pairs visited and skipped / kept. */
  skipped: Float64Array;
  kept: Float64Array;
  /** The kept blocks as a block mask (all full): measured sparsity and recall come from it. */
  mask: BlockMask;
  recall: Float64Array;
  meanRecall: Float64Array;
}

export function visitOrder(causalBlocks: number, order: BlasstOrder): number[] {
  const natural = Array.from({ length: causalBlocks }, (_, kb) => kb);
  if (order === 'natural' || causalBlocks <= 1) return natural;
  const last = causalBlocks - 1;
  return [last, 0, ...natural.slice(1, last)];
}

export function blasst(input: ReferenceInput, params: BlasstParams): BlasstResult {
  const { q, k, v, numQueries, qStart, numHeads, numKvHeads, headDim, scale } = input;
  const { blockQ, blockK, lambda } = params;
  const group = groupSize(input);
  const geometry = { numHeads, numQueries, qStart, blockQ, blockK };
  const numQueryBlocks = ceilDiv(numQueries, blockQ);
  const out = new Float64Array(numQueries * numHeads * headDim);
  const skipped = new Float64Array(numHeads);
  const kept = new Float64Array(numHeads);
  const keptBlocks: number[][][] = [];
  const s = new Float64Array(blockQ * blockK);
  const blockMax = new Float64Array(blockQ);
  const m = new Float64Array(blockQ);
  const l = new Float64Array(blockQ);
  const acc = new Float64Array(blockQ * headDim);
  for (let h = 0; h < numHeads; h++) {
    const kvHead = Math.floor(h / group);
    const headBlocks: number[][] = [];
    for (let qb = 0; qb < numQueryBlocks; qb++) {
      const row0 = qb * blockQ;
      const rows = Math.min(numQueries, row0 + blockQ) - row0;
      m.fill(-Infinity);
      l.fill(0);
      acc.fill(0);
      const keptHere: number[] = [];
      for (const kb of visitOrder(causalKeyBlocks(geometry, qb), params.order)) {
        const key0 = kb * blockK;
        const cols = Math.min(blockK, qStart + row0 + rows - key0);
        for (let r = 0; r < rows; r++) {
          const qOffset = ((row0 + r) * numHeads + h) * headDim;
          blockMax[r] = -Infinity;
          for (let c = 0; c < cols; c++) {
            const t = key0 + c;
            if (t > qStart + row0 + r) {
              s[r * blockK + c] = -Infinity;
              continue;
            }
            const kOffset = (t * numKvHeads + kvHead) * headDim;
            let dot = 0;
            for (let d = 0; d < headDim; d++) dot += q[qOffset + d] * k[kOffset + d];
            s[r * blockK + c] = dot * scale;
            blockMax[r] = Math.max(blockMax[r], dot * scale);
          }
        }
        let skip = true;
        for (let r = 0; r < rows && skip; r++) {
          const rowSkips =
            blockMax[r] === -Infinity ||
            (m[r] !== -Infinity && Math.exp(blockMax[r] - m[r]) < lambda);
          if (!rowSkips) skip = false;
        }
        if (skip) {
          skipped[h]++;
          continue;
        }
        kept[h]++;
        keptHere.push(kb);
        for (let r = 0; r < rows; r++) {
          const mNew = Math.max(m[r], blockMax[r]);
          if (mNew === -Infinity) continue;
          const correction = Math.exp(m[r] - mNew);
          l[r] *= correction;
          for (let d = 0; d < headDim; d++) acc[r * headDim + d] *= correction;
          for (let c = 0; c < cols; c++) {
            const score = s[r * blockK + c];
            if (score === -Infinity) continue;
            const p = Math.exp(score - mNew);
            l[r] += p;
            const vOffset = ((key0 + c) * numKvHeads + kvHead) * headDim;
            for (let d = 0; d < headDim; d++) acc[r * headDim + d] += p * v[vOffset + d];
          }
          m[r] = mNew;
        }
      }
      for (let r = 0; r < rows; r++) {
        if (l[r] === 0) continue;
        const oOffset = ((row0 + r) * numHeads + h) * headDim;
        for (let d = 0; d < headDim; d++) out[oOffset + d] = acc[r * headDim + d] / l[r];
      }
      headBlocks.push(keptHere);
    }
    keptBlocks.push(headBlocks);
  }
  const mask = blockMaskFromLists(geometry, (h, qb) => keptBlocks[h][qb]);
  const { recall, meanRecall } = sparseAttention(input, mask);
  return { out, skipped, kept, mask, recall, meanRecall };
}

/** Decode: one query (qStart = kvLen - 1), a row group of one row per head. */
export function blasstDecode(
  input: ReferenceInput,
  params: Omit<BlasstParams, 'blockQ'>,
): BlasstResult {
  if (input.numQueries !== 1) throw new Error('blasstDecode takes exactly one query');
  return blasst(input, { ...params, blockQ: 1 });
}
