import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { roundToFloat16 } from '../../src/gpu/f16';
import { attentionReference } from '../../src/kernels/attention.reference';
import {
  densePrefillOnHost,
  prefillTileConfig,
  type HostPrefillInput,
  type PrefillTileConfig,
} from '../../src/kernels/densePrefill';
import { defaultScale, type KvDtype } from '../../src/kernels/layout';
import { pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

interface PrefillCase {
  numQueries: number;
  qStart: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  pageSize: number;
  dtype: KvDtype;
  shuffled: boolean;
  seed: number;
  /** Half-width of the uniform q and k values (larger makes larger scores). */
  magnitude?: number;
  /** q = 0: every score is equal, so each output row is the mean of the visible values. */
  zeroQuery?: boolean;
}

function describeCase(c: PrefillCase): string {
  const extras = [c.shuffled ? 'shuffled pages' : '', c.zeroQuery ? 'equal scores' : ''];
  return [
    `L=${c.numQueries} qStart=${c.qStart} heads=${c.numHeads}/${c.numKvHeads} d=${c.headDim}`,
    `page=${c.pageSize} ${c.dtype}`,
    ...extras.filter(Boolean),
  ].join(' ');
}

function makeInput(c: PrefillCase): HostPrefillInput {
  const kvLen = c.qStart + c.numQueries;
  const magnitude = c.magnitude ?? 1;
  const qCount = c.numQueries * c.numHeads * c.headDim;
  const kvCount = kvLen * c.numKvHeads * c.headDim;
  return {
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    numQueries: c.numQueries,
    qStart: c.qStart,
    scale: defaultScale(c.headDim),
    kv: { pageSize: c.pageSize, numKvHeads: c.numKvHeads, headDim: c.headDim, dtype: c.dtype },
    q: c.zeroQuery ? new Float32Array(qCount) : randomFloats(qCount, c.seed, magnitude),
    k: randomFloats(kvCount, c.seed + 1, magnitude),
    v: randomFloats(kvCount, c.seed + 2),
    pageTable: c.shuffled ? shuffledPageTable(pagesFor(kvLen, c.pageSize), c.seed) : undefined,
  };
}

/** Largest |scaled score| over all query, visible key and head triples. */
function maxScore(input: HostPrefillInput): number {
  const { q, k, numQueries, qStart, numHeads, numKvHeads, headDim, scale } = input;
  const group = numHeads / numKvHeads;
  let largest = 0;
  for (let i = 0; i < numQueries; i++) {
    for (let h = 0; h < numHeads; h++) {
      for (let t = 0; t <= qStart + i; t++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) {
          dot +=
            q[(i * numHeads + h) * headDim + d] *
            k[(t * numKvHeads + Math.floor(h / group)) * headDim + d];
        }
        largest = Math.max(largest, Math.abs(dot * scale));
      }
    }
  }
  return largest;
}

/**
 * Runs a case and checks it: f32 KV against the reference at 1e-4 of the output's magnitude; f16 KV
 * at 1e-4 against the reference on f16-rounded K and V, and at 5e-3 against the unrounded one.
 */
async function expectMatchesReference(c: PrefillCase, config?: PrefillTileConfig) {
  const input = makeInput(c);
  const actual = await densePrefillOnHost(ctx, input, config);
  const rounded =
    c.dtype === 'f16'
      ? { ...input, k: roundToFloat16(input.k), v: roundToFloat16(input.v) }
      : input;
  const exact = maxAbsError(actual, attentionReference(rounded));
  expect(exact.magnitude).toBeGreaterThan(0);
  expect(exact.error).toBeLessThanOrEqual(1e-4 * exact.magnitude);
  if (c.dtype === 'f16') {
    const unrounded = maxAbsError(actual, attentionReference(input));
    expect(unrounded.error).toBeLessThanOrEqual(5e-3 * unrounded.magnitude);
  }
  return input;
}

// Cases are grouped by what the pipeline is specialised on (head dim, KV heads, page size, KV
// dtype): SwiftShader takes seconds to compile each variant, and the head counts are uniforms.
const d32 = { headDim: 32, numKvHeads: 2, pageSize: 16, dtype: 'f32' } as const;
const d64 = { headDim: 64, numKvHeads: 2, pageSize: 64, dtype: 'f32' } as const;
const d64f16 = { ...d64, dtype: 'f16' } as const;
const d96 = { headDim: 96, numKvHeads: 1, pageSize: 16, dtype: 'f32' } as const;
const d128 = { headDim: 128, numKvHeads: 2, pageSize: 16, dtype: 'f32' } as const;
const d128f16 = { ...d128, pageSize: 32, dtype: 'f16' } as const;

const cases: PrefillCase[] = [
  { ...d32, numQueries: 1, qStart: 45, numHeads: 4, shuffled: true, seed: 1 },
  { ...d32, numQueries: 70, qStart: 0, numHeads: 16, shuffled: true, seed: 2 },
  { ...d64, numQueries: 1, qStart: 0, numHeads: 2, shuffled: false, seed: 3 },
  { ...d64, numQueries: 130, qStart: 0, numHeads: 6, shuffled: true, seed: 4 },
  { ...d64f16, numQueries: 64, qStart: 64, numHeads: 8, shuffled: true, seed: 5 },
  { ...d96, numQueries: 45, qStart: 100, numHeads: 7, shuffled: true, seed: 6 },
  { ...d128, numQueries: 77, qStart: 0, numHeads: 8, shuffled: true, seed: 7 },
  { ...d128, numQueries: 33, qStart: 31, numHeads: 2, shuffled: false, seed: 8 },
  { ...d128, numQueries: 150, qStart: 0, numHeads: 4, shuffled: false, seed: 9 },
  { ...d128f16, numQueries: 96, qStart: 17, numHeads: 6, shuffled: true, seed: 10 },
];

describe('dense causal prefill attention', () => {
  it('picks tiles that fit the device', () => {
    for (const headDim of [32, 64, 96, 128]) {
      const config = prefillTileConfig(ctx, headDim);
      expect(config.workgroupBytes).toBeLessThanOrEqual(ctx.caps.maxWorkgroupStorageBytes);
      expect(config.threads).toBeLessThanOrEqual(ctx.caps.maxInvocationsPerWorkgroup);
      expect(config.keyTile % config.keyChunk).toBe(0);
    }
  });

  it.each(cases.map((c) => [describeCase(c), c] as const))(
    'matches the reference: %s',
    async (_, c) => {
      await expectMatchesReference(c);
    },
  );

  it('keeps scores of magnitude ~80 finite and exact (online softmax)', async () => {
    const c: PrefillCase = {
      ...d64,
      numQueries: 90,
      qStart: 0,
      numHeads: 4,
      shuffled: false,
      seed: 11,
      magnitude: 9,
    };
    const input = await expectMatchesReference(c);
    expect(maxScore(input)).toBeGreaterThan(80);
  });

  it('averages the visible values when all scores are equal', async () => {
    await expectMatchesReference({
      ...d32,
      numQueries: 100,
      qStart: 20,
      numHeads: 4,
      shuffled: false,
      seed: 12,
      zeroQuery: true,
    });
  });

  it.each([1, 3, 4, 7, 8])('maps query heads to KV heads, GQA group size %i', async (group) => {
    await expectMatchesReference({
      ...d32,
      numQueries: 20,
      qStart: 5,
      numHeads: 2 * group,
      shuffled: true,
      seed: 13 + group,
    });
  });

  it('works without subgroups (one invocation per row)', async () => {
    const noSubgroups = { ...ctx, caps: { ...ctx.caps, subgroups: false } };
    const c: PrefillCase = {
      ...d32,
      numQueries: 40,
      qStart: 9,
      numHeads: 4,
      shuffled: true,
      seed: 30,
    };
    await expectMatchesReference(c, prefillTileConfig(noSubgroups, c.headDim));
  });
});
