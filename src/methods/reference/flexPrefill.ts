/**
 * FlexPrefill as the Sparse Frontier code runs it (tau = 0: query-aware mode off, every head uses
 * the vertical-slash pattern): the vertical-slash estimation over the last `approximationSize`
 * queries, normalised by that count so that column and diagonal scores each sum to 1, then per
 * head the fewest columns (and, separately, diagonals) whose sorted cumulative score covers
 * `alpha`, but at least `minBudget`. Per query head, like Vertical-Slash.
 */
import type { ReferenceInput } from '../../kernels/attention.reference';
import { numKeysOf } from './masks';
import {
  estimateVerticalSlash,
  verticalSlashFromSizes,
  type VerticalSlashScores,
  type VerticalSlashSelection,
} from './verticalSlash';

export const FLEX_PREFILL_DEFAULTS = {
  /** The paper's grid: 0.55 - 0.88. */
  alpha: 0.65,
  approximationSize: 512,
  minBudget: 512,
  tau: 0,
  sinkColumns: 4,
  localDiagonals: 64,
  blockQ: 64,
  blockK: 64,
} as const;

export interface FlexPrefillParams {
  alpha: number;
  approximationSize: number;
  minBudget: number;
  sinkColumns: number;
  localDiagonals: number;
  blockQ: number;
  blockK: number;
}

/**
 * score_cover_topk of the reference code: (number of sorted prefix sums <= alpha) + 1, i.e. the
 * fewest entries whose sum exceeds alpha (one more when a prefix sum equals alpha exactly),
 * clamped to the number of entries.
 */
export function coverCount(normalised: ArrayLike<number>, alpha: number): number {
  const sorted = Array.from(normalised).sort((a, b) => b - a);
  let cumulative = 0;
  let count = 0;
  for (const x of sorted) {
    cumulative += x;
    if (cumulative <= alpha) count++;
  }
  return Math.min(count + 1, sorted.length);
}

export interface FlexPrefillSelection extends VerticalSlashSelection {
  scores: VerticalSlashScores;
  /** Per head, the vertical and slash counts chosen. */
  verticalSizes: number[];
  slashSizes: number[];
}

export function flexPrefill(
  input: ReferenceInput,
  params: FlexPrefillParams = FLEX_PREFILL_DEFAULTS,
): FlexPrefillSelection {
  const scores = estimateVerticalSlash(input, params.approximationSize);
  const numKeys = numKeysOf(input);
  const verticalSizes: number[] = [];
  const slashSizes: number[] = [];
  for (let h = 0; h < input.numHeads; h++) {
    const column = scores.column[h].map((x) => x / scores.rows);
    const diagonal = scores.diagonal[h].map((x) => x / scores.rows);
    const budget = (cover: number) => Math.min(numKeys, Math.max(params.minBudget, cover));
    verticalSizes.push(budget(coverCount(column, params.alpha)));
    slashSizes.push(budget(coverCount(diagonal, params.alpha)));
  }
  const selection = verticalSlashFromSizes(
    input,
    scores,
    (h) => ({ vertical: verticalSizes[h], slash: slashSizes[h] }),
    params,
  );
  return { ...selection, scores, verticalSizes, slashSizes };
}
