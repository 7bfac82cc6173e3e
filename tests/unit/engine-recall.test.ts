import { describe, expect, it } from 'vitest';
import { recallOfRows, sampleQueryRows } from '../../src/engine/recall';
import { attentionMapReference } from '../../src/kernels/attentionMap.reference';
import { blockMaskFromMaskMod, denseMask, type BlockMask } from '../../src/methods/reference/masks';
import { randomFloats } from '../support/random';

const SHAPE = { numHeads: 4, numKvHeads: 2, headDim: 8 };
const SCALE = 1 / Math.sqrt(SHAPE.headDim);
const QUERIES = 200;

// Scaled up so that the softmax is peaked and masks lose real mass.
const q = randomFloats(QUERIES * SHAPE.numHeads * SHAPE.headDim, 1, 3);
const k = randomFloats(QUERIES * SHAPE.numKvHeads * SHAPE.headDim, 2, 3);
const geometry = {
  numHeads: SHAPE.numHeads,
  numQueries: QUERIES,
  qStart: 0,
  blockQ: 16,
  blockK: 16,
};
const allRows = Array.from({ length: QUERIES }, (_, i) => i);

function recall(mask: BlockMask, rows: readonly number[]): Float64Array {
  return recallOfRows({ ...SHAPE, q, k, scale: SCALE, mask, rows });
}

const mean = (values: ArrayLike<number>) =>
  Array.from(values).reduce((sum, x) => sum + x, 0) / values.length;

describe('sampled query rows', () => {
  it('spreads distinct ascending rows over the prompt, always with the last', () => {
    const rows = sampleQueryRows(1000, 64, 7);
    expect(rows).toHaveLength(64);
    expect(rows.at(-1)).toBe(999);
    expect(new Set(rows).size).toBe(64);
    expect(rows).toEqual([...rows].sort((a, b) => a - b));
    // One row in each of the 63 strata of rows 0 .. 998.
    rows.slice(0, -1).forEach((row, s) => {
      expect(row).toBeGreaterThanOrEqual(Math.floor((s * 999) / 63));
      expect(row).toBeLessThan(Math.floor(((s + 1) * 999) / 63));
    });
  });

  it('is reproducible from its seed and changes with it', () => {
    expect(sampleQueryRows(5000, 64, 3)).toEqual(sampleQueryRows(5000, 64, 3));
    expect(sampleQueryRows(5000, 64, 3)).not.toEqual(sampleQueryRows(5000, 64, 4));
  });

  it('takes every row when the sample is as large as the prompt', () => {
    expect(sampleQueryRows(5, 64, 0)).toEqual([0, 1, 2, 3, 4]);
    expect(sampleQueryRows(2, 2, 0)).toEqual([0, 1]);
    expect(sampleQueryRows(3, 2, 9)).toHaveLength(2);
  });

  it('rejects an empty prompt or sample', () => {
    expect(() => sampleQueryRows(0, 64, 0)).toThrow(/no query to sample/);
    expect(() => sampleQueryRows(10, 0, 0)).toThrow(/positive integer/);
  });
});

describe('recall of sampled rows', () => {
  it('is 1 for a mask that keeps everything', () => {
    for (const value of recall(denseMask(geometry), allRows)) expect(value).toBeCloseTo(1, 12);
  });

  it('is the diagonal mass for a mask that keeps only the diagonal', () => {
    const diagonal = blockMaskFromMaskMod(geometry, (_b, _h, i, j) => i === j);
    const rows = [0, 1, 17, 99, 199];
    const measured = recall(diagonal, rows);
    rows.forEach((i, r) => {
      // Independently: p(i, i) per head from the plain softmax, mean over heads.
      let sum = 0;
      for (let h = 0; h < SHAPE.numHeads; h++) {
        const kvHead = Math.floor(h / 2);
        const logits = Array.from({ length: i + 1 }, (_, t) => {
          let dot = 0;
          for (let d = 0; d < SHAPE.headDim; d++) {
            dot +=
              q[(i * SHAPE.numHeads + h) * SHAPE.headDim + d] *
              k[(t * SHAPE.numKvHeads + kvHead) * SHAPE.headDim + d];
          }
          return Math.exp(dot * SCALE);
        });
        sum += logits[i] / logits.reduce((a, b) => a + b, 0);
      }
      expect(measured[r]).toBeCloseTo(sum / SHAPE.numHeads, 12);
    });
    expect(measured[0]).toBeCloseTo(1, 12);
    expect(Math.max(...measured.slice(1))).toBeLessThan(1);
  });

  const window = blockMaskFromMaskMod(geometry, (_b, h, i, j) => j < 2 || i - j < 24 + 8 * h);

  it('over every row equals the exact recall of the attention-map reference', () => {
    const exact = attentionMapReference(
      { ...SHAPE, q, k, numQueries: QUERIES, qStart: 0, scale: SCALE, blockSize: 1 },
      window,
    );
    expect(mean(recall(window, allRows))).toBeCloseTo(mean(exact.recall!), 10);
    expect(mean(exact.recall!)).toBeLessThan(0.95);
  });

  it('on a sample of rows is close to the exact recall', () => {
    const exact = mean(recall(window, allRows));
    const sampled = mean(recall(window, sampleQueryRows(QUERIES, 64, 0)));
    expect(Math.abs(sampled - exact)).toBeLessThan(0.03);
  });

  it('rejects a row outside the mask', () => {
    expect(() => recall(window, [QUERIES])).toThrow(/outside the mask's 200 query rows/);
  });
});
