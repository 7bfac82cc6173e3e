import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { ModelBackend, type ModelBackendOptions } from '../../src/engine/modelBackend';
import type { AttentionChoice, BackendRun } from '../../src/engine/sweepTypes';
import { getMethod } from '../../src/methods/registry';
import { loadModelFolder, type ModelFolder } from '../../src/model/load';
import { seededRandom } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

const FOLDER = 'tests/fixtures/models/llama3_rope_headdim';
const LENGTH = 96;
const LAYER = 1;
const DENSE: AttentionChoice = { name: 'dense', params: {} };

describe('attention recall of a real tiny model', () => {
  let ctx: GpuContext;
  let folder: ModelFolder;
  let ids: number[];
  beforeAll(async () => {
    ctx = await sharedGpuContext();
    folder = await loadModelFolder(FOLDER);
    const random = seededRandom(5);
    ids = Array.from({ length: LENGTH }, () => Math.floor(random() * folder.config.vocabSize));
  });

  const codec = { count: () => 0, encodePrompt: () => [], decode: () => '' };

  it('rejects recall options it cannot honour', () => {
    const backend = (options: Partial<ModelBackendOptions>) =>
      new ModelBackend(ctx, folder.model, codec, { name: FOLDER, ...options });
    expect(() => backend({ exactRecallMaxTokens: 4096 })).toThrow(/past the 2048 tokens/);
    expect(() => backend({ exactRecallMaxTokens: -1 })).toThrow(/whole number of tokens/);
    expect(() => backend({ recallQueries: 0 })).toThrow(/positive integer, got 0/);
  });

  async function runWith(
    attention: { prefill: AttentionChoice; decode: AttentionChoice },
    options: Partial<ModelBackendOptions> = {},
  ): Promise<BackendRun> {
    const backend = new ModelBackend(ctx, folder.model, codec, { name: FOLDER, ...options });
    const runner = await backend.configure(attention, LENGTH + 2, { recallLayer: LAYER });
    try {
      return await runner.run(ids, { maxNewTokens: 2 });
    } finally {
      runner.dispose();
    }
  }

  const shape = () => ({
    numHeads: folder.config.numHeads,
    numKvHeads: folder.config.numKvHeads,
    headDim: folder.config.headDim,
    numQueries: LENGTH,
    qStart: 0,
  });
  const prefillAt = (method: string, sparsity: number): AttentionChoice => ({
    name: method,
    params: getMethod(method).paramsForSparsity(sparsity, shape()),
  });

  it('exact and sampled prefill recall agree (sliding window)', async () => {
    const attention = { prefill: prefillAt('sliding_window', 0.6), decode: DENSE };
    const exact = await runWith(attention);
    // Past the exact limit: every row through the sampled path, then a sample of 24 rows.
    const everyRow = await runWith(attention, { exactRecallMaxTokens: 0, recallQueries: 1000 });
    const sampled = await runWith(attention, { exactRecallMaxTokens: 0, recallQueries: 24 });
    expect(exact.recall).toMatchObject({ kind: 'exact', queries: LENGTH });
    expect(everyRow.recall).toMatchObject({ kind: 'exact', queries: LENGTH });
    expect(sampled.recall).toMatchObject({ kind: 'sampled', queries: 24 });
    expect(exact.recall!.recall).toBeLessThan(0.99);
    expect(everyRow.recall!.recall).toBeCloseTo(exact.recall!.recall, 4);
    expect(Math.abs(sampled.recall!.recall - exact.recall!.recall)).toBeLessThan(0.05);
  });

  // Vertical-Slash's default sinks and local diagonals would keep all of this short prompt.
  const verticalSlash: AttentionChoice = {
    name: 'vertical_slash',
    params: { verticalSize: 8, lastQ: 16, sinkColumns: 2, localDiagonals: 4, block: 64 },
  };
  it.each([
    ['block_sparse', () => prefillAt('block_sparse', 0.5)],
    ['vertical_slash', () => verticalSlash],
  ])(
    'prefill recall past the exact limit follows the GPU-planned mask (%s)',
    async (_name, prefill) => {
      const attention = { prefill: prefill(), decode: DENSE };
      const exact = await runWith(attention);
      const planned = await runWith(attention, { exactRecallMaxTokens: 0, recallQueries: 1000 });
      expect(planned.recall!.kind).toBe('exact');
      expect(planned.recall!.recall).toBeGreaterThan(0);
      expect(planned.recall!.recall).toBeLessThan(1);
      // The GPU planner (f32) and the CPU reference (f64) choose the same blocks but for ties.
      expect(Math.abs(planned.recall!.recall - exact.recall!.recall)).toBeLessThan(0.02);
    },
  );

  it('says why BLASST has no recall past the exact limit', async () => {
    const attention = { prefill: prefillAt('blasst', 0.5), decode: DENSE };
    const run = await runWith(attention, { exactRecallMaxTokens: 0 });
    expect(run.recall).toBeNull();
    expect(run.recallUnavailable).toMatch(/blasst .* exposes no kept mask/);
  });

  it('decode recall is 1 for Quest with a budget covering the cache, less with a small one', async () => {
    const everything = await runWith({
      prefill: DENSE,
      decode: { name: 'quest', params: { pageSize: 16, tokenBudget: 128 } },
    });
    expect(everything.recall).toMatchObject({ kind: 'exact', queries: 1 });
    expect(everything.recall!.recall).toBeCloseTo(1, 12);
    const small = await runWith({
      prefill: DENSE,
      decode: { name: 'quest', params: { pageSize: 16, tokenBudget: 16 } },
    });
    expect(small.recall!.recall).toBeGreaterThan(0);
    expect(small.recall!.recall).toBeLessThan(1);
  });

  it('decode recall of SnapKV observes the prompt', async () => {
    const run = await runWith({
      prefill: DENSE,
      decode: {
        name: 'snapkv',
        // The defaults' local window alone covers this short prompt.
        params: { capacity: 32, window: 16, poolKernel: 5, localWindow: 8, prefixTokens: 4 },
      },
    });
    expect(run.recall).toMatchObject({ kind: 'exact', queries: 1 });
    expect(run.recall!.recall).toBeGreaterThan(0);
    expect(run.recall!.recall).toBeLessThan(1);
  });
});
