/**
 * Vertical-Slash (MInference) as in the Sparse Frontier code: the softmax of the last `lastQ`
 * queries against all keys scores each key column (column sum) and each diagonal (sum along
 * query - key = d); the top `verticalSize` columns and top `slashSize` diagonals are kept, with
 * the first `sinkColumns` columns and the `localDiagonals` most recent diagonals forced in.
 *
 * GQA: the paper's code runs the method head by head (query head h with its KV head), so the
 * pattern is chosen per query head, not shared over the group.
 *
 * Our mask is the exact token-level pattern; MInference's kernel widens each slash to 64-wide key
 * blocks per 64-row query block, a superset that its sparsity count also approximates.
 */
import type { ReferenceInput } from '../../kernels/attention.reference';
import { numKeysOf, verticalSlashMask, type BlockMask } from './masks';
import { rowScores } from './sparseAttention';
import { closestOnDecreasing, topKIndices } from './select';

export const VERTICAL_SLASH_DEFAULTS = {
  verticalSize: 512,
  slashSize: 512,
  /** 256 in the paper's config; 512 for NIAH and story retrieval. */
  lastQ: 256,
  sinkColumns: 4,
  localDiagonals: 64,
  blockQ: 64,
  blockK: 64,
} as const;

export interface VerticalSlashParams {
  verticalSize: number;
  slashSize: number;
  lastQ: number;
  sinkColumns: number;
  localDiagonals: number;
  blockQ: number;
  blockK: number;
}

export interface VerticalSlashScores {
  /** column[h][j]: sum over the last queries of their softmax weight on key j. */
  column: Float64Array[];
  /** diagonal[h][d]: the same summed along query position - key = d. */
  diagonal: Float64Array[];
  /** Number of last queries actually used (min(lastQ, numQueries)). */
  rows: number;
}

/** The estimation pass shared with FlexPrefill (float64 softmax, causal). */
export function estimateVerticalSlash(input: ReferenceInput, lastQ: number): VerticalSlashScores {
  const { numHeads, numQueries, qStart } = input;
  const numKeys = numKeysOf(input);
  const rows = Math.min(lastQ, numQueries);
  const column = Array.from({ length: numHeads }, () => new Float64Array(numKeys));
  const diagonal = Array.from({ length: numHeads }, () => new Float64Array(numKeys));
  const scores = new Float64Array(numKeys);
  for (let i = numQueries - rows; i < numQueries; i++) {
    const keys = qStart + i + 1;
    for (let h = 0; h < numHeads; h++) {
      rowScores(input, i, h, scores);
      let max = -Infinity;
      for (let t = 0; t < keys; t++) max = Math.max(max, scores[t]);
      let sum = 0;
      for (let t = 0; t < keys; t++) {
        scores[t] = Math.exp(scores[t] - max);
        sum += scores[t];
      }
      for (let t = 0; t < keys; t++) {
        const p = scores[t] / sum;
        column[h][t] += p;
        diagonal[h][qStart + i - t] += p;
      }
    }
  }
  return { column, diagonal, rows };
}

/** Top `count` entries of scores after forcing indices 0 .. forced-1 to the top. */
export function selectWithForced(scores: Float64Array, count: number, forced: number): number[] {
  const boosted = Float64Array.from(scores);
  boosted.fill(Infinity, 0, Math.min(forced, boosted.length));
  return topKIndices(boosted, count).sort((a, b) => a - b);
}

export interface VerticalSlashSelection {
  /** Kept key columns per head, ascending. */
  columns: number[][];
  /** Kept diagonal offsets (query position - key) per head, ascending. */
  diagonals: number[][];
  mask: BlockMask;
}

export function verticalSlashFromSizes(
  input: ReferenceInput,
  scores: VerticalSlashScores,
  sizes: (h: number) => { vertical: number; slash: number },
  params: Pick<VerticalSlashParams, 'sinkColumns' | 'localDiagonals' | 'blockQ' | 'blockK'>,
): VerticalSlashSelection {
  const columns: number[][] = [];
  const diagonals: number[][] = [];
  for (let h = 0; h < input.numHeads; h++) {
    const { vertical, slash } = sizes(h);
    columns.push(selectWithForced(scores.column[h], vertical, params.sinkColumns));
    // Diagonal d = 0 is the main diagonal, so the most recent diagonals are the lowest offsets.
    diagonals.push(selectWithForced(scores.diagonal[h], slash, params.localDiagonals));
  }
  const mask = verticalSlashMask(
    { ...input, blockQ: params.blockQ, blockK: params.blockK },
    (h) => columns[h],
    (h) => diagonals[h],
  );
  return { columns, diagonals, mask };
}

export function verticalSlash(
  input: ReferenceInput,
  params: VerticalSlashParams = VERTICAL_SLASH_DEFAULTS,
): VerticalSlashSelection & { scores: VerticalSlashScores } {
  const scores = estimateVerticalSlash(input, params.lastQ);
  const numKeys = numKeysOf(input);
  const sizes = {
    vertical: Math.min(params.verticalSize, numKeys),
    slash: Math.min(params.slashSize, numKeys),
  };
  return { ...verticalSlashFromSizes(input, scores, () => sizes, params), scores };
}

/**
 * Nominal kept interactions of a prefill of `length` tokens with n verticals and n slashes (the
 * paper's configs use equal sizes): the n nearest diagonals exactly, plus each vertical's cells
 * below that band, for a column uniform over the columns the band does not fully cover. The mask
 * itself reports the measured sparsity.
 */
export function nominalKept(n: number, length: number): number {
  const slash = n * length - (n * (n - 1)) / 2;
  return slash + (n * Math.max(0, length - n + 1)) / 2;
}

/** verticalSize = slashSize = n with nominal sparsity closest to s (n >= localDiagonals). */
export function paramsForSparsity(s: number, length: number): VerticalSlashParams {
  const total = (length * (length + 1)) / 2;
  const lo = Math.min(VERTICAL_SLASH_DEFAULTS.localDiagonals, length);
  const n =
    s <= 0
      ? length
      : closestOnDecreasing(
          lo,
          length,
          s,
          (m) => 1 - Math.min(total, nominalKept(m, length)) / total,
        );
  return { ...VERTICAL_SLASH_DEFAULTS, verticalSize: n, slashSize: n };
}
