import { beforeAll, describe, expect, it } from 'vitest';
import { createEmptyBuffer, createStorageBuffer, readBuffer } from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { submitOps } from '../../src/kernels/model/common';
import {
  candidateProbabilities,
  createArgmax,
  createTopK,
  readCandidates,
  sampleCandidates,
  topKReference,
  type Candidates,
} from '../../src/kernels/model/sampling';
import { seededRandom } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

/** Logits in [-10, 10) with a few exact ties, a -inf and a NaN. */
function logits(vocab: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  const out = Float32Array.from({ length: vocab }, () => (next() * 2 - 1) * 10);
  if (vocab > 10) {
    out[vocab - 3] = out[7]; // ties broken towards the lower index
    out[3] = -Infinity;
    out[5] = NaN;
  }
  return out;
}

async function gpuTopK(row: Float32Array, vocab: number, k: number, offset = 0) {
  const values = createEmptyBuffer(ctx.device, k * 4);
  const indices = createEmptyBuffer(ctx.device, k * 4);
  const op = createTopK(
    ctx,
    { vocabSize: vocab, k, offset },
    { logits: createStorageBuffer(ctx.device, row), values, indices },
  );
  submitOps(ctx, [op]);
  const result = await readCandidates(ctx, { values, indices }, k);
  op.dispose();
  return result;
}

describe('argmax and top-k on the GPU', () => {
  it.each([1, 7, 2048, 5000, 151936])('argmax over %i logits', async (vocab) => {
    const row = logits(vocab, vocab);
    // A second row, read through the offset, whose maximum is tied at two places.
    const second = logits(vocab, vocab + 1);
    const top = vocab > 1 ? vocab - 2 : 0;
    second[top] = 50;
    if (vocab > 1) second[vocab - 1] = 50;
    const both = new Float32Array(2 * vocab);
    both.set(row);
    both.set(second, vocab);
    const out = createEmptyBuffer(ctx.device, 4);
    const logitsBuffer = createStorageBuffer(ctx.device, both);
    const first = createArgmax(ctx, { vocabSize: vocab }, { logits: logitsBuffer, out });
    submitOps(ctx, [first]);
    const [firstId] = new Uint32Array(await readBuffer(ctx.device, out, 4));
    expect(firstId).toBe(topKReference(row, 1).indices[0]);
    const last = createArgmax(
      ctx,
      { vocabSize: vocab, offset: vocab },
      { logits: logitsBuffer, out },
    );
    submitOps(ctx, [last]);
    const [lastId] = new Uint32Array(await readBuffer(ctx.device, out, 4));
    expect(lastId).toBe(top);
  });

  it.each([
    [3, 3],
    [64, 1000],
    [64, 20000],
    [17, 4099],
  ])('top-%i of %i logits equals the reference', async (k, vocab) => {
    const row = logits(vocab, k + vocab);
    const actual = await gpuTopK(row, vocab, k);
    const expected = topKReference(row, k);
    expect(actual.indices).toEqual(expected.indices);
    expect(actual.values).toEqual(expected.values);
  });
});

describe('sampling on the CPU from the GPU candidates', () => {
  const draw = (candidates: Candidates, seed: number, n: number, topK: number, topP: number) => {
    const random = seededRandom(seed);
    return Array.from({ length: n }, () =>
      sampleCandidates(candidates, { temperature: 0.8, topK, topP }, random),
    );
  };

  it('is deterministic for a seed, and top-k 1 is the argmax', async () => {
    const vocab = 3000;
    const row = logits(vocab, 99);
    for (let i = 0; i < vocab; i++) row[i] *= 0.3; // a flat enough distribution to vary
    const candidates = await gpuTopK(row, vocab, 64);
    const a = draw(candidates, 42, 50, 40, 0.9);
    expect(draw(candidates, 42, 50, 40, 0.9)).toEqual(a);
    expect(draw(candidates, 43, 50, 40, 0.9)).not.toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(1);
    const allowed = new Set(candidates.indices.slice(0, 40));
    expect(a.every((id) => allowed.has(id))).toBe(true);
    const argmax = topKReference(row, 1).indices[0];
    expect(new Set(draw(candidates, 7, 20, 1, 1))).toEqual(new Set([argmax]));
    const greedy = sampleCandidates(candidates, { temperature: 0, topK: 0, topP: 1 }, Math.random);
    expect(greedy).toBe(argmax);
  });

  it('respects top-p on a constructed distribution', async () => {
    // Probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1 on tokens 11, 4, 9, 2 of 16.
    const row = new Float32Array(16).fill(-1e30);
    [
      [11, 0.5],
      [4, 0.3],
      [9, 0.15],
      [2, 0.05],
    ].forEach(([id, p]) => (row[id] = Math.log(p)));
    const candidates = await gpuTopK(row, 16, 8);
    expect([...candidates.indices.slice(0, 4)]).toEqual([11, 4, 9, 2]);
    const options = { temperature: 1, topK: 0, topP: 0.7 };
    const probs = candidateProbabilities(candidates, options);
    expect(probs[0]).toBeCloseTo(0.5 / 0.8, 6);
    expect(probs[1]).toBeCloseTo(0.3 / 0.8, 6);
    expect(probs.slice(2).every((p) => p === 0)).toBe(true);
    const random = seededRandom(5);
    const counts = new Map<number, number>();
    for (let i = 0; i < 4000; i++) {
      const id = sampleCandidates(candidates, options, random);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((x, y) => x - y)).toEqual([4, 11]);
    expect((counts.get(11) ?? 0) / 4000).toBeCloseTo(0.625, 1);
    // top-p 0.9 keeps three tokens: the mass before the third is 0.8, before the fourth 0.95.
    const wide = candidateProbabilities(candidates, { ...options, topP: 0.9 });
    expect(wide.filter((p) => p > 0).length).toBe(3);
  });
});
