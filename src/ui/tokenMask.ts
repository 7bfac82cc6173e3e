/**
 * The token-level picture of a preview method's mask: the same plan as the block picture
 * (engine/maskPreview.ts: the method's reference on the preview shape and its seeded data), read
 * element by element. Long sequences are pooled to at most TOKEN_PICTURE_SIZE cells a side, each
 * holding the fraction of its causal elements that are kept; up to that size a cell is one token.
 */
import { PREVIEW_HEAD_DIM, previewShape, randomData } from '../engine/maskPreview';
import { getMethod } from '../methods/registry';
import { rowKeep } from '../methods/reference/masks';
import type { MethodName, MethodParams } from '../methods/types';

export const TOKEN_PICTURE_SIZE = 512;
/** Cell value of a cell without causal elements (above the diagonal). */
export const NON_CAUSAL = 255;
/** Cell values 0..KEPT_SCALE are the kept fraction of the cell's causal elements. */
export const KEPT_SCALE = 254;

export interface TokenPicture {
  seqLen: number;
  numHeads: number;
  /** Cells per side; tokensPerCell = seqLen / size (1 when size = seqLen). */
  size: number;
  /** cells[(h * size + row) * size + col]: 0..KEPT_SCALE kept fraction, NON_CAUSAL. */
  cells: Uint8Array;
}

export function planTokenPicture(
  method: MethodName,
  seqLen: number,
  params: Partial<MethodParams>,
  maxSize = TOKEN_PICTURE_SIZE,
): TokenPicture {
  const shape = previewShape(seqLen);
  const { mask } = getMethod(method).reference(
    { ...shape, ...randomData(seqLen), scale: 1 / Math.sqrt(PREVIEW_HEAD_DIM) },
    params,
  );
  const size = Math.min(seqLen, maxSize);
  const cellOf = (token: number) => Math.floor((token * size) / seqLen);
  const kept = new Uint32Array(size * size);
  const causal = new Uint32Array(size * size);
  const keep = new Uint8Array(mask.numKeys);
  const cells = new Uint8Array(mask.numHeads * size * size);
  for (let h = 0; h < mask.numHeads; h++) {
    kept.fill(0);
    causal.fill(0);
    for (let i = 0; i < seqLen; i++) {
      rowKeep(mask, h, i, keep);
      const row = cellOf(i) * size;
      for (let j = 0; j <= i; j++) {
        const cell = row + cellOf(j);
        causal[cell]++;
        kept[cell] += keep[j];
      }
    }
    const base = h * size * size;
    for (let c = 0; c < size * size; c++) {
      cells[base + c] =
        causal[c] === 0 ? NON_CAUSAL : Math.round((kept[c] / causal[c]) * KEPT_SCALE);
    }
  }
  return { seqLen, numHeads: mask.numHeads, size, cells };
}
