/**
 * Block-mask previews for the "Sparsity patterns" panel: a prefill method's CPU reference run on a
 * small attention shape (few heads, tiny head dim), its block mask classified per block for a
 * picture, and its sparsity counted from the mask (masks.ts), never estimated. Methods whose
 * selection depends on the data plan on seeded random q/k, so a preview reproduces.
 */
import { randomFloats } from './random';
import { getMethod } from '../methods/registry';
import {
  blockCounts,
  causalKeyBlocks,
  measuredSparsity,
  rowEntries,
  BLOCK_FULL,
  type BlockCounts,
  type BlockMask,
} from '../methods/reference/masks';
import type { MethodName, MethodParams, MethodShape, SparseMethod } from '../methods/types';

/** The prefill methods the panel previews, in the order it lists them. */
export const PREVIEW_METHODS: readonly MethodName[] = [
  'sliding_window',
  'vertical_slash',
  'flexprefill',
  'block_sparse',
  'user_pattern',
  'dense',
];

/** Methods whose mask depends on q/k: planned on seeded random data. */
export const DATA_DEPENDENT_METHODS: readonly MethodName[] = [
  'vertical_slash',
  'flexprefill',
  'block_sparse',
];

export const PREVIEW_HEADS = 2;
export const PREVIEW_HEAD_DIM = 8;
export const PREVIEW_SEED = 2025;

/** What a cell of the picture shows, per (head, query block, key block). */
export const CELL_NON_CAUSAL = 0;
export const CELL_SKIPPED = 1;
export const CELL_PARTIAL = 2;
export const CELL_FULL = 3;

export interface MaskPreview {
  method: MethodName;
  seqLen: number;
  numHeads: number;
  blockQ: number;
  blockK: number;
  numQueryBlocks: number;
  numKeyBlocks: number;
  /** cells[(h * numQueryBlocks + qb) * numKeyBlocks + kb]: one of the CELL_ codes. */
  cells: Uint8Array;
  /** masks.ts measuredSparsity over all heads: 1 - kept causal interactions / causal total. */
  measuredSparsity: number;
  /** The same count per head. */
  headSparsity: number[];
  counts: BlockCounts;
  dataDependent: boolean;
  /** Milliseconds the planning took. */
  ms: number;
}

export function previewMethods(): SparseMethod[] {
  return PREVIEW_METHODS.map((name) => getMethod(name));
}

export function isDataDependent(name: MethodName): boolean {
  return DATA_DEPENDENT_METHODS.includes(name);
}

export function previewShape(seqLen: number): MethodShape {
  return {
    numHeads: PREVIEW_HEADS,
    numKvHeads: PREVIEW_HEADS,
    headDim: PREVIEW_HEAD_DIM,
    numQueries: seqLen,
    qStart: 0,
  };
}

const inputCache = new Map<number, { q: Float32Array; k: Float32Array; v: Float32Array }>();

/** Seeded random q/k/v for a sequence length (the same every time). */
export function randomData(seqLen: number) {
  let data = inputCache.get(seqLen);
  if (!data) {
    const n = seqLen * PREVIEW_HEADS * PREVIEW_HEAD_DIM;
    data = {
      q: randomFloats(n, PREVIEW_SEED, 2),
      k: randomFloats(n, PREVIEW_SEED + 1, 2),
      v: randomFloats(n, PREVIEW_SEED + 2),
    };
    inputCache.clear();
    inputCache.set(seqLen, data);
  }
  return data;
}

/** The picture's cells: full / partial / skipped-but-causal / non-causal for every block. */
function classifyCells(mask: BlockMask): Uint8Array {
  const { numHeads, numQueryBlocks, numKeyBlocks } = mask;
  const cells = new Uint8Array(numHeads * numQueryBlocks * numKeyBlocks);
  for (let h = 0; h < numHeads; h++) {
    for (let qb = 0; qb < numQueryBlocks; qb++) {
      const row = (h * numQueryBlocks + qb) * numKeyBlocks;
      cells.fill(CELL_SKIPPED, row, row + causalKeyBlocks(mask, qb));
      const [start, end] = rowEntries(mask, h, qb);
      for (let e = start; e < end; e++) {
        cells[row + mask.keyBlock[e]] = mask.blockKind[e] === BLOCK_FULL ? CELL_FULL : CELL_PARTIAL;
      }
    }
  }
  return cells;
}

/** One head of a mask as a mask of its own (for per-head sparsity). */
function headMask(mask: BlockMask, h: number): BlockMask {
  const [start] = rowEntries(mask, h, 0);
  const [, end] = rowEntries(mask, h, mask.numQueryBlocks - 1);
  const rowStart = mask.rowStart
    .slice(h * mask.numQueryBlocks, (h + 1) * mask.numQueryBlocks + 1)
    .map((v) => v - start);
  const rule = mask.rule;
  return {
    ...mask,
    numHeads: 1,
    rowStart,
    keyBlock: mask.keyBlock.slice(start, end),
    blockKind: mask.blockKind.slice(start, end),
    rule:
      rule.kind === 'vertical-slash'
        ? {
            ...rule,
            columns: rule.columns.slice(h * rule.keyWords, (h + 1) * rule.keyWords),
            diagonals: rule.diagonals.slice(h * rule.keyWords, (h + 1) * rule.keyWords),
          }
        : rule.kind === 'bitset'
          ? { ...rule, slot: rule.slot.slice(start, end) }
          : rule,
  };
}

/**
 * Plans a method's block mask on the preview shape. Throws what the method throws (a
 * UserPatternError with its line for a broken mask_mod, a range error for a bad param).
 */
export function planMaskPreview(
  name: MethodName,
  seqLen: number,
  params: Partial<MethodParams>,
): MaskPreview {
  const started = performance.now();
  const method = getMethod(name);
  const shape = previewShape(seqLen);
  const reference = method.reference(
    { ...shape, ...randomData(seqLen), scale: 1 / Math.sqrt(PREVIEW_HEAD_DIM) },
    params,
  );
  const mask = reference.kept.kind === 'blocks' ? reference.kept.mask : reference.mask;
  return {
    method: name,
    seqLen,
    numHeads: mask.numHeads,
    blockQ: mask.blockQ,
    blockK: mask.blockK,
    numQueryBlocks: mask.numQueryBlocks,
    numKeyBlocks: mask.numKeyBlocks,
    cells: classifyCells(mask),
    measuredSparsity: measuredSparsity(mask),
    headSparsity: Array.from({ length: mask.numHeads }, (_, h) =>
      measuredSparsity(headMask(mask, h)),
    ),
    counts: blockCounts(mask),
    dataDependent: isDataDependent(name),
    ms: performance.now() - started,
  };
}

/** The method's params for a target sparsity on the preview shape, keeping code params as they are. */
export function paramsForPreviewSparsity(
  name: MethodName,
  sparsity: number,
  seqLen: number,
  current: MethodParams,
): MethodParams {
  const method = getMethod(name);
  const next = method.paramsForSparsity(sparsity, previewShape(seqLen));
  for (const spec of method.params) {
    if (spec.kind === 'code' && current[spec.key] !== undefined) next[spec.key] = current[spec.key];
  }
  return next;
}
