import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { ModelBackend, type PromptCodec } from '../../src/engine/modelBackend';
import { MemoryResultStore } from '../../src/engine/store/memory';
import { aggregateResults, runSweep } from '../../src/engine/sweep';
import type { SweepConfig, SweepEvent } from '../../src/engine/sweepTypes';
import { loadModelFolder, type ModelFolder } from '../../src/model/load';
import { createModel } from '../../src/model/runtime/model';
import { sharedGpuContext } from '../support/gpu';

const FOLDER = 'tests/fixtures/models/llama3_rope_headdim';

/**
 * The fixture has no tokenizer: one id per group of WORDS_PER_TOKEN whitespace-separated words (a
 * hash into the vocabulary). Coarse, to keep SwiftShader's sequences short, but count and encode
 * agree, so the tasks fill their prompts to the length the model sees.
 */
const WORDS_PER_TOKEN = 3;

function wordCodec(vocabSize: number): PromptCodec {
  const groups = (text: string) => {
    const words = text.split(/\s+/).filter((w) => w.length > 0);
    const out: string[] = [];
    for (let i = 0; i < words.length; i += WORDS_PER_TOKEN) {
      out.push(words.slice(i, i + WORDS_PER_TOKEN).join(' '));
    }
    return out;
  };
  const idOf = (group: string) => {
    let hash = 0;
    for (let i = 0; i < group.length; i++) hash = (hash * 31 + group.charCodeAt(i)) >>> 0;
    return hash % vocabSize;
  };
  return {
    count: (text) => groups(text).length,
    encodePrompt: (prompt) => groups(prompt).map(idOf),
    decode: (ids) => ids.map((id) => `w${id}`).join(' '),
  };
}

const CONFIG: SweepConfig = {
  tasks: ['ruler_niah'],
  lengths: [128],
  samples: 2,
  prefillMethods: ['block_sparse'],
  decodeMethods: [],
  sparsities: [0.5],
  maxNewTokens: 2,
  recallLayer: 1,
};

describe('a sweep on a real tiny model', () => {
  let ctx: GpuContext;
  let folder: ModelFolder;
  beforeAll(async () => {
    ctx = await sharedGpuContext();
    folder = await loadModelFolder(FOLDER);
  });

  it('runs dense and a sparse method on the same samples with every field measured', async () => {
    const backend = new ModelBackend(ctx, folder.model, wordCodec(folder.config.vocabSize), {
      name: FOLDER,
    });
    const store = new MemoryResultStore();
    const events: SweepEvent[] = [];
    for await (const event of runSweep(CONFIG, backend, store)) events.push(event);
    expect(events.at(-1)).toMatchObject({ type: 'done', progress: { done: 4, total: 4 } });
    const results = store.all();
    expect(results.map((r) => [r.key, r.status, r.error])).toEqual([
      ['dense|ruler_niah/128/0', 'ok', undefined],
      ['dense|ruler_niah/128/1', 'ok', undefined],
      ['prefill:block_sparse@0.5|ruler_niah/128/0', 'ok', undefined],
      ['prefill:block_sparse@0.5|ruler_niah/128/1', 'ok', undefined],
    ]);
    for (const r of results) {
      expect(r.promptTokens).toBeGreaterThan(0.9 * 128);
      expect(r.generatedTokens).toBeGreaterThan(0);
      expect(r.generatedTokens).toBeLessThanOrEqual(2);
      expect(r.measured.prefill.layers).toHaveLength(folder.config.numLayers);
      expect(r.measured.decode.layers).toHaveLength(folder.config.numLayers);
      expect(r.timings.prefillTokens).toBe(r.promptTokens);
      expect(r.timings.prefillMs).toBeGreaterThan(0);
      expect(r.cost.prefillFlops).toBeGreaterThan(0);
      expect(r.cost.decodeBytesPerToken).toBeGreaterThan(0);
      expect(r.score).toBeGreaterThanOrEqual(0);
    }
    const dense = results.filter((r) => r.phase === 'baseline');
    const sparse = results.filter((r) => r.phase === 'prefill');
    for (const r of dense) {
      expect(r.measured.prefill.sparsity).toBe(0);
      expect(r.measured.decode.sparsity).toBe(0);
      expect(r.vsDense).toBeNull();
      expect(r.recall).toBeNull();
      expect(r.recallKind).toBeNull();
    }
    for (const r of sparse) {
      expect(r.attention.decode.name).toBe('dense');
      expect(r.measured.prefill.sparsity).toBeGreaterThan(0.2);
      expect(r.measured.prefill.layers.every((l) => l.method === 'block_sparse')).toBe(true);
      expect(r.measured.decode.sparsity).toBe(0);
      expect(r.vsDense!.kl).not.toBeNull();
      expect(r.vsDense!.kl!).toBeGreaterThanOrEqual(0);
      expect(r.vsDense!.top1Agree).not.toBeNull();
      // What block_sparse keeps of layer 1's dense attention: some mass, not all of it.
      expect(r.recall).toBeGreaterThan(0);
      expect(r.recall).toBeLessThan(1);
      // A short prompt: over every query.
      expect(r.recallKind).toBe('exact');
      expect(r.recallQueries).toBe(r.promptTokens);
      const twin = dense.find((d) => d.sampleId === r.sampleId)!;
      expect(r.promptTokens).toBe(twin.promptTokens);
      expect(r.cost.prefillFlops).toBeLessThan(twin.cost.prefillFlops);
    }
    const rows = aggregateResults(results);
    expect(rows.map((r) => [r.pointId, r.n, r.errors])).toEqual([
      ['dense', 2, 0],
      ['prefill:block_sparse@0.5', 2, 0],
    ]);
    expect(rows[1].vsDense!.kl.n).toBe(2);
  });

  it('decodes greedily like Model.generate, run after run on one configuration', async () => {
    const backend = new ModelBackend(ctx, folder.model, wordCodec(folder.config.vocabSize), {
      name: FOLDER,
    });
    const dense = { name: 'dense', params: {} };
    const runner = await backend.configure({ prefill: dense, decode: dense }, 160);
    const reference = createModel(ctx, folder.model, { maxSeqLen: 160 });
    try {
      const ids = Array.from({ length: 120 }, (_, i) => (i * 37) % folder.config.vocabSize);
      const expected = await reference.generate(ids, { maxNewTokens: 3, stopTokens: [] });
      const first = await runner.run(ids, { maxNewTokens: 3 });
      const second = await runner.run(ids, { maxNewTokens: 3 });
      expect(first.outputIds).toEqual(expected.ids);
      expect(second.outputIds).toEqual(first.outputIds);
      expect(second.logits.afterPrompt).toEqual(first.logits.afterPrompt);
      expect(first.logits.afterFirstToken).not.toBeNull();
      expect(first.timings.prefillTokens).toBe(120);
      expect(first.timings.decodeTokens).toBe(first.outputIds.length - 1);
    } finally {
      runner.dispose();
      reference.dispose();
    }
  });
});
