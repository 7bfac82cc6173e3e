/**
 * Quest (decode): the cache is cut into pages of `pageSize` tokens; each page keeps, per KV head,
 * the per-channel min m_d and max M_d of its keys. For the decode query, a page's bound
 * sum_d max(q_d m_d, q_d M_d) >= q.k for every key k of the page; the `tokenBudget / pageSize`
 * complete pages with the highest bounds are read, plus always the current (last, possibly
 * partial) page. When the budget covers every page, all are read.
 *
 * GQA: as our METHODS.md asks, the bound is summed over the group's query heads and the pages are
 * shared by the group, so each selected page is read once per KV head. (The paper's code selects
 * per query head.)
 */
import { groupSize } from '../../kernels/layout';
import type { ReferenceInput } from '../../kernels/attention.reference';
import { blockMaskFromLists, ceilDiv, measuredSparsity, numKeysOf, type BlockMask } from './masks';
import { sparseAttention } from './sparseAttention';
import { topKIndices } from './select';

export const QUEST_DEFAULTS = { pageSize: 16, tokenBudget: 1024 } as const;

export interface QuestParams {
  pageSize: number;
  /** A multiple of pageSize: pages selected = tokenBudget / pageSize, plus the current page. */
  tokenBudget: number;
}

export interface PageSummaries {
  /** min[kvHead][page * headDim + d] and the same for max. */
  min: Float64Array[];
  max: Float64Array[];
  numPages: number;
}

export function pageSummaries(
  k: ArrayLike<number>,
  numKeys: number,
  numKvHeads: number,
  headDim: number,
  pageSize: number,
): PageSummaries {
  const numPages = ceilDiv(numKeys, pageSize);
  const min = Array.from({ length: numKvHeads }, () =>
    new Float64Array(numPages * headDim).fill(Infinity),
  );
  const max = Array.from({ length: numKvHeads }, () =>
    new Float64Array(numPages * headDim).fill(-Infinity),
  );
  for (let t = 0; t < numKeys; t++) {
    const base = Math.floor(t / pageSize) * headDim;
    for (let g = 0; g < numKvHeads; g++) {
      for (let d = 0; d < headDim; d++) {
        const x = k[(t * numKvHeads + g) * headDim + d];
        if (x < min[g][base + d]) min[g][base + d] = x;
        if (x > max[g][base + d]) max[g][base + d] = x;
      }
    }
  }
  return { min, max, numPages };
}

export interface QuestResult {
  /** pages[kvHead]: pages read, ascending (the current page included). */
  pages: number[][];
  /** bounds[kvHead][page] for the complete pages, summed over the group's query heads. */
  bounds: Float64Array[];
  /** Pages read over all KV heads, and summary pages read (every page, once per KV head). */
  pagesRead: number;
  summaryPagesRead: number;
  mask: BlockMask;
  sparsity: number;
  out: Float64Array;
  recall: Float64Array;
  meanRecall: Float64Array;
}

export function quest(input: ReferenceInput, params: QuestParams = QUEST_DEFAULTS): QuestResult {
  const { q, k, numHeads, numKvHeads, headDim, numQueries, qStart } = input;
  if (numQueries !== 1) throw new Error('Quest is a decode method: exactly one query');
  if (params.tokenBudget % params.pageSize !== 0) {
    throw new Error('tokenBudget must be a multiple of pageSize');
  }
  const group = groupSize(input);
  const numKeys = numKeysOf(input);
  const { pageSize } = params;
  const summaries = pageSummaries(k, numKeys, numKvHeads, headDim, pageSize);
  const current = summaries.numPages - 1;
  const budgetPages = params.tokenBudget / pageSize;
  const pages: number[][] = [];
  const bounds: Float64Array[] = [];
  for (let g = 0; g < numKvHeads; g++) {
    const bound = new Float64Array(current);
    for (let p = 0; p < current; p++) {
      for (let h = g * group; h < (g + 1) * group; h++) {
        for (let d = 0; d < headDim; d++) {
          const qd = q[h * headDim + d];
          const i = p * headDim + d;
          bound[p] += Math.max(qd * summaries.min[g][i], qd * summaries.max[g][i]);
        }
      }
    }
    bounds.push(bound);
    pages.push([...topKIndices(bound, budgetPages), current].sort((a, b) => a - b));
  }
  const mask = blockMaskFromLists(
    { numHeads, numQueries, qStart, blockQ: 1, blockK: pageSize },
    (h) => pages[Math.floor(h / group)],
  );
  const { out, recall, meanRecall } = sparseAttention(input, mask);
  return {
    pages,
    bounds,
    pagesRead: pages.reduce((n, list) => n + list.length, 0),
    summaryPagesRead: summaries.numPages * numKvHeads,
    mask,
    sparsity: measuredSparsity(mask),
    out,
    recall,
    meanRecall,
  };
}

/** The paper's knob: sparsity = 1 - tokenBudget / length, budget rounded to whole pages. */
export function paramsForSparsity(s: number, length: number): QuestParams {
  const { pageSize } = QUEST_DEFAULTS;
  const pages = Math.max(1, Math.round(((1 - s) * length) / pageSize));
  return { pageSize, tokenBudget: pages * pageSize };
}
