import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { keptSharePerHead, recallPerHead } from '../../src/kernels/attentionMap';
import { attentionMapReference } from '../../src/kernels/attentionMap.reference';
import { defaultScale, type KvDtype } from '../../src/kernels/layout';
import { blockMaskFromMaskMod, measuredSparsity } from '../../src/methods/reference/masks';
import { slidingWindow } from '../../src/methods/reference/slidingWindow';
import { computeRopeInvFreq } from '../../src/model/loading/config';
import { loadModelFolder, type ModelFolder } from '../../src/model/load';
import {
  captureAttentionQueries,
  modelAttentionMap,
  promptAttentionMap,
  readLayerKv,
} from '../../src/model/runtime/attentionMap';
import { createModel } from '../../src/model/runtime/model';
import { maxAbsError } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

const root = join(import.meta.dirname, '../fixtures/models');

let ctx: GpuContext;
let folder: ModelFolder;
beforeAll(async () => {
  ctx = await sharedGpuContext();
  folder = await loadModelFolder(join(root, 'llama_gqa_tied'));
});

const promptIds = [1, 17, 250, 3, 99, 41, 8, 8, 120, 7, 64, 200, 5, 33, 12, 301, 2, 90, 45, 11];

/**
 * Layer 0's post-RoPE queries on the CPU (float64): RMSNorm of the embeddings, the q projection,
 * then the rotate-half rotation of each head by position * inv_freq.
 */
function layerZeroQueries(ids: readonly number[]): Float64Array {
  const { config, embedTokens, layers } = folder.model;
  const { hiddenSize, numHeads, headDim, normEps } = config;
  const { attnNorm, q } = layers[0];
  const invFreq = computeRopeInvFreq(config);
  const half = headDim / 2;
  const out = new Float64Array(ids.length * numHeads * headDim);
  ids.forEach((id, t) => {
    const x = embedTokens.subarray(id * hiddenSize, (id + 1) * hiddenSize);
    const meanSquare = x.reduce((sum, v) => sum + v * v, 0) / hiddenSize;
    const inverseRms = 1 / Math.sqrt(meanSquare + normEps);
    const h = Array.from(x, (v, i) => v * inverseRms * attnNorm.weight[i]);
    const row = new Float64Array(q.outFeatures);
    for (let o = 0; o < q.outFeatures; o++) {
      let dot = q.bias?.[o] ?? 0;
      for (let i = 0; i < hiddenSize; i++) dot += q.weight[o * hiddenSize + i] * h[i];
      row[o] = dot;
    }
    for (let head = 0; head < numHeads; head++) {
      const base = head * headDim;
      for (let i = 0; i < half; i++) {
        const angle = t * invFreq[i];
        const [a, b] = [row[base + i], row[base + i + half]];
        out[(t * numHeads + head) * headDim + i] = a * Math.cos(angle) - b * Math.sin(angle);
        out[(t * numHeads + head) * headDim + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  });
  return out;
}

describe('attention map of a model run (llama_gqa_tied)', () => {
  for (const kvDtype of ['f32', 'f16'] as KvDtype[]) {
    it(`captures layer 0's post-RoPE queries across prefill chunks and maps them (${kvDtype} KV)`, async () => {
      // Chunks of 8: the range 5 .. 16 spans three steps, the later ones with cached keys.
      const model = createModel(ctx, folder.model, { prefillChunk: 8, maxSeqLen: 64, kvDtype });
      const request = { layer: 0, queryStart: 5, queryEnd: 17 };
      const capture = captureAttentionQueries(ctx, model, request);
      try {
        await model.prefill(promptIds);
        const captured = await capture.read();
        const { numHeads, numKvHeads, headDim } = model.config;
        const width = numHeads * headDim;
        const expectedQ = layerZeroQueries(promptIds).subarray(
          request.queryStart * width,
          request.queryEnd * width,
        );
        const qError = maxAbsError(captured, expectedQ);
        expect(qError.magnitude).toBeGreaterThan(0);
        expect(qError.error).toBeLessThan(1e-4);

        const numQueries = request.queryEnd - request.queryStart;
        const mask = blockMaskFromMaskMod(
          { numHeads, numQueries, qStart: request.queryStart, blockQ: 4, blockK: 4 },
          (_b, h, q, kv) => kv < 2 || q - kv < 3 + h,
        );
        const grid = await modelAttentionMap(ctx, model, capture, { blockSize: 3, keptMask: mask });
        const expected = attentionMapReference(
          {
            q: captured,
            k: (await readLayerKv(ctx, model, 0, request.queryEnd)).k,
            numHeads,
            numKvHeads,
            headDim,
            numQueries,
            qStart: request.queryStart,
            scale: defaultScale(headDim),
            blockSize: 3,
          },
          mask,
        );
        const massError = maxAbsError(grid.mass, expected.mass);
        expect(massError.magnitude).toBeGreaterThan(0);
        expect(massError.error).toBeLessThan(1e-6);
        expect(maxAbsError(grid.kept!, expected.kept!).error).toBeLessThan(1e-6);
        expect(maxAbsError(recallPerHead(grid), expected.recall!).error).toBeLessThan(1e-6);
      } finally {
        capture.dispose();
        model.dispose();
      }
    });
  }

  it('maps a prompt with what a method keeps, in layer 1 after sparse attention in layer 0', async () => {
    const attention = {
      prefill: { name: 'sliding_window', params: { window: 6, sinks: 2, block: 16 } },
    };
    const model = createModel(ctx, folder.model, { prefillChunk: 8, maxSeqLen: 64, attention });
    try {
      const map = await promptAttentionMap(ctx, model, {
        ids: promptIds,
        layer: 1,
        blockSize: 4,
        method: attention.prefill,
      });
      const { numHeads, numKvHeads, headDim } = model.config;
      const shape = { numHeads, numQueries: promptIds.length, qStart: 0 };
      const mask = slidingWindow(shape, { window: 6, sinks: 2, blockQ: 16, blockK: 16 });
      // The capture is gone; layer 1's q is recomputed by a second run with a fresh capture.
      const capture = captureAttentionQueries(ctx, model, {
        layer: 1,
        queryStart: 0,
        queryEnd: promptIds.length,
      });
      model.reset();
      await model.prefill(promptIds);
      const expected = attentionMapReference(
        {
          q: await capture.read(),
          k: (await readLayerKv(ctx, model, 1, promptIds.length)).k,
          numHeads,
          numKvHeads,
          headDim,
          numQueries: promptIds.length,
          qStart: 0,
          scale: defaultScale(headDim),
          blockSize: 4,
        },
        mask,
      );
      capture.dispose();
      expect(map.method).toBe('sliding_window');
      expect(maxAbsError(map.grid.mass, expected.mass).error).toBeLessThan(1e-6);
      expect(maxAbsError(map.grid.kept!, expected.kept!).error).toBeLessThan(1e-6);
      const meanRecall = expected.recall!.reduce((sum, r) => sum + r, 0) / numHeads;
      expect(map.recall).toBeCloseTo(meanRecall, 6);
      expect(map.recall).toBeLessThan(1);
      expect(map.sparsity).toBeCloseTo(measuredSparsity(mask), 12);
      expect(Array.from(map.headBudgets!)).toEqual(Array.from(keptSharePerHead(mask)));
    } finally {
      model.dispose();
    }
  });

  it('says what to run when the captured range has not been run, or does not exist', async () => {
    const model = createModel(ctx, folder.model, { prefillChunk: 8, maxSeqLen: 64 });
    try {
      const capture = captureAttentionQueries(ctx, model, {
        layer: 1,
        queryStart: 10,
        queryEnd: 30,
      });
      await model.prefill(promptIds);
      await expect(modelAttentionMap(ctx, model, capture, { blockSize: 1 })).rejects.toThrow(
        /run a prompt of at least 30 tokens/,
      );
      expect(() =>
        captureAttentionQueries(ctx, model, { layer: 2, queryStart: 0, queryEnd: 4 }),
      ).toThrow(/layer 2 does not exist; the model has layers 0 .. 1/);
      expect(() =>
        captureAttentionQueries(ctx, model, { layer: 0, queryStart: 4, queryEnd: 4 }),
      ).toThrow(/is empty/);
      capture.dispose();

      const method = { name: 'sliding_window', params: {} };
      await expect(
        promptAttentionMap(ctx, model, { ids: promptIds, layer: 0, queryStart: 4, method }),
      ).rejects.toThrow(/sliding_window plans over the whole prompt; map queries 0 \.\. 19/);
      await expect(
        promptAttentionMap(ctx, model, { ids: new Array<number>(3000).fill(5), layer: 0, method }),
      ).rejects.toThrow(/at most 2048 tokens \(this one has 3000\); shorten the prompt/);
    } finally {
      model.dispose();
    }
  });
});
