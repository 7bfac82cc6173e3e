import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { roundToFloat16 } from '../../src/gpu/f16';
import type { ReferenceInput } from '../../src/kernels/attention.reference';
import { defaultScale, type KvDtype } from '../../src/kernels/layout';
import { pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import {
  decodeCompactedOnGpu,
  snapKVOnHost,
  type HostSnapKVInput,
  type SnapKVSelectOptions,
} from '../../src/kernels/snapKV';
import { adaSnapKV } from '../../src/methods/reference/adaSnapKV';
import { compactedDecode, snapKV } from '../../src/methods/reference/snapKV';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

interface Case {
  name: string;
  numHeads: number;
  numKvHeads: number;
  /** Prompt tokens; the cache holds one more (the decoded token, always kept). */
  prompt: number;
  dtype: KvDtype;
  seed: number;
  options: SnapKVSelectOptions;
  /** Ada-SnapKV cases whose heads end up with different counts. */
  unequal?: boolean;
}

const headDim = 32;
const pageSize = 16;
const small = { window: 24, poolKernel: 21, localWindow: 16, prefixTokens: 4 };

const cases: Case[] = [
  { name: 'SnapKV GQA 1', numHeads: 2, numKvHeads: 2, prompt: 203, dtype: 'f32', seed: 1, options: { ...small, mode: 'snapkv', capacity: 60 } }, // prettier-ignore
  { name: 'SnapKV GQA 4 f16', numHeads: 8, numKvHeads: 2, prompt: 150, dtype: 'f16', seed: 2, options: { ...small, mode: 'snapkv', capacity: 45 } }, // prettier-ignore
  { name: 'Ada-SnapKV GQA 1', numHeads: 4, numKvHeads: 4, prompt: 177, dtype: 'f32', seed: 3, options: { ...small, mode: 'ada', capacity: 50, minRatio: 0.2 }, unequal: true }, // prettier-ignore
  { name: 'Ada-SnapKV GQA 4 f16', numHeads: 8, numKvHeads: 2, prompt: 213, dtype: 'f16', seed: 4, options: { ...small, mode: 'ada', capacity: 70, minRatio: 0.5 }, unequal: true }, // prettier-ignore
  // One KV group per batch of the estimation (scratch of one byte).
  { name: 'SnapKV GQA 4 f16, batched estimation', numHeads: 8, numKvHeads: 2, prompt: 150, dtype: 'f16', seed: 8, options: { ...small, mode: 'snapkv', capacity: 45, estimateScratchBytes: 1 } }, // prettier-ignore
  { name: 'Ada-SnapKV GQA 2, batched estimation', numHeads: 6, numKvHeads: 3, prompt: 190, dtype: 'f32', seed: 9, options: { ...small, mode: 'ada', capacity: 60, minRatio: 0.3, estimateScratchBytes: 1 }, unequal: true }, // prettier-ignore
  { name: 'SnapKV capacity >= length', numHeads: 4, numKvHeads: 1, prompt: 77, dtype: 'f32', seed: 5, options: { ...small, mode: 'snapkv', capacity: 100 } }, // prettier-ignore
  { name: 'Ada-SnapKV capacity >= length', numHeads: 2, numKvHeads: 2, prompt: 61, dtype: 'f32', seed: 6, options: { ...small, mode: 'ada', capacity: 61 } }, // prettier-ignore
  { name: 'Ada-SnapKV defaults (window 256, local 128, prefix 4)', numHeads: 4, numKvHeads: 2, prompt: 263, dtype: 'f32', seed: 7, options: { window: 256, poolKernel: 21, mode: 'ada', capacity: 150 } }, // prettier-ignore
];

function makeInput(c: Case): HostSnapKVInput {
  const kvLen = c.prompt + 1;
  const kvCount = kvLen * c.numKvHeads * headDim;
  return {
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim,
    numQueries: c.prompt,
    qStart: 0,
    scale: defaultScale(headDim),
    kv: { pageSize, numKvHeads: c.numKvHeads, headDim, dtype: c.dtype },
    q: randomFloats(c.prompt * c.numHeads * headDim, c.seed, 2),
    k: randomFloats(kvCount, c.seed + 100, 2),
    v: randomFloats(kvCount, c.seed + 200),
    kvLen,
    pageTable: shuffledPageTable(pagesFor(kvLen, pageSize), c.seed),
  };
}

/** The references' view: f16 pools round K and V; `tokens` of them. */
function referenceKv(input: HostSnapKVInput, tokens: number) {
  const round = (x: Float32Array) =>
    input.kv.dtype === 'f16' ? roundToFloat16(x) : Float64Array.from(x);
  const count = tokens * input.numKvHeads * headDim;
  return { k: round(input.k).subarray(0, count), v: round(input.v).subarray(0, count) };
}

describe('SnapKV / Ada-SnapKV on the GPU', () => {
  it.each(cases.map((c) => [c.name, c] as const))(
    'keeps the reference tokens and decodes over the compacted cache: %s',
    async (_, c) => {
      const input = makeInput(c);
      const prefill: ReferenceInput = { ...input, ...referenceKv(input, c.prompt) };
      const params = {
        capacity: c.options.capacity,
        window: c.options.window,
        poolKernel: c.options.poolKernel,
        localWindow: c.options.localWindow ?? 128,
        prefixTokens: c.options.prefixTokens ?? 4,
      };
      const ref =
        c.options.mode === 'ada'
          ? adaSnapKV(prefill, { ...params, minRatio: c.options.minRatio ?? 0.2 })
          : snapKV(prefill, params);
      const gpu = await snapKVOnHost(ctx, input, c.options);
      try {
        expect(gpu.kept).toEqual(ref.kept);
        if (c.options.capacity >= c.prompt) {
          for (const kept of gpu.kept) expect(kept.length).toBe(c.prompt);
        }
        expect(gpu.cache.lengths).toEqual(ref.kept.map((list) => list.length + 1));
        if (c.unequal) {
          // The per-head single-view decode path runs (heads keep different counts).
          expect(new Set(gpu.cache.lengths).size).toBeGreaterThan(1);
        }

        // The compacted K rows are the kept source rows, in order (f32 pools: exact).
        if (c.dtype === 'f32') {
          const pool = gpu.kPool as Float32Array;
          ref.kept.forEach((list, g) => {
            [...list, c.prompt].forEach((t, j) => {
              const page = Math.floor(j / pageSize);
              const dst = ((page * c.numKvHeads + g) * pageSize + (j % pageSize)) * headDim;
              const src = (t * c.numKvHeads + g) * headDim;
              expect(Array.from(pool.subarray(dst, dst + headDim))).toEqual(
                Array.from(input.k.subarray(src, src + headDim)),
              );
            });
          });
        }

        // Decode of one new token (position prompt) over the compacted cache.
        const qDecode = randomFloats(c.numHeads * headDim, c.seed + 300, 2);
        const decodeInput: ReferenceInput = {
          ...input,
          ...referenceKv(input, c.prompt + 1),
          q: qDecode,
          numQueries: 1,
          qStart: c.prompt,
        };
        const expected = compactedDecode(decodeInput, ref.kept, c.prompt).out;
        const out = await decodeCompactedOnGpu(ctx, gpu.cache, qDecode, input);
        const { error, magnitude } = maxAbsError(out, expected);
        expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
      } finally {
        gpu.destroy();
      }
    },
  );

  it('rejects a capacity below the always-kept tokens', async () => {
    const c = cases[0];
    await expect(snapKVOnHost(ctx, makeInput(c), { ...c.options, capacity: 10 })).rejects.toThrow(
      /capacity/,
    );
  });
});
