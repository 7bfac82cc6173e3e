import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { loadModelFolder, type ModelFolder } from '../../src/model/load';
import { resolveAttention } from '../../src/model/runtime/attention';
import { createModel } from '../../src/model/runtime/model';
import { sharedGpuContext } from '../support/gpu';

interface Reference {
  input_ids: number[];
  logits_shape: [number, number];
  logits: number[];
  prompt_ids: number[];
  greedy_ids: number[];
}

const fixtures = ['llama_gqa_tied', 'llama3_rope_headdim', 'qwen2_bias', 'gpt2'];
const root = join(import.meta.dirname, '../fixtures/models');

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

const measured: Record<string, number> = {};
afterAll(() => console.log('model forward: max |logit - reference|', measured));

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe.each(fixtures)('%s', (name) => {
  let folder: ModelFolder;
  let reference: Reference;
  beforeAll(async () => {
    folder = await loadModelFolder(join(root, name));
    reference = JSON.parse(readFileSync(join(root, name, 'reference.json'), 'utf8')) as Reference;
  });

  it('logits of every position match transformers within 1e-3', async () => {
    // Chunks of 8 tokens: the second and third prefill attend to cached keys (qStart > 0).
    const model = createModel(ctx, folder.model, { prefillChunk: 8, maxSeqLen: 64 });
    try {
      const logits = await model.prefill(reference.input_ids, { allLogits: true });
      expect(logits.length).toBe(reference.logits.length);
      const error = maxAbs(logits, reference.logits);
      measured[`${name} prefill`] = error;
      expect(error).toBeLessThan(1e-3);
      // Decode the last token again on top of the first T - 1: same logits row.
      model.reset();
      await model.prefill(reference.input_ids.slice(0, -1));
      const last = await model.decodeStep(reference.input_ids.at(-1)!);
      const vocab = reference.logits_shape[1];
      const decodeError = maxAbs(last, reference.logits.slice(-vocab));
      measured[`${name} decode`] = decodeError;
      expect(decodeError).toBeLessThan(1e-3);
    } finally {
      model.dispose();
    }
  });

  it('32 greedy tokens match transformers', async () => {
    const model = createModel(ctx, folder.model, { maxSeqLen: 48 });
    try {
      const streamed: number[] = [];
      const result = await model.generate(reference.prompt_ids, {
        maxNewTokens: 32,
        stopTokens: [],
        onToken: (id) => void streamed.push(id),
      });
      expect(result.ids).toEqual(reference.greedy_ids);
      expect(streamed).toEqual(reference.greedy_ids);
      expect(result.timings.prefill.tokens).toBe(reference.prompt_ids.length);
      expect(result.timings.decode.submits).toBe(31);
    } finally {
      model.dispose();
    }
  });
});

describe('options', () => {
  it('f16 weights, f16 KV and split weight chunks stay close to the reference', async () => {
    const folder = await loadModelFolder(join(root, 'llama_gqa_tied'));
    const reference = JSON.parse(
      readFileSync(join(root, 'llama_gqa_tied', 'reference.json'), 'utf8'),
    ) as Reference;
    const model = createModel(ctx, folder.model, {
      weightDtype: 'f16',
      kvDtype: 'f16',
      maxSeqLen: 32,
      maxBindingBytes: 4096,
    });
    try {
      expect(model.fit.notes.some((note) => note.includes('split into'))).toBe(true);
      const logits = await model.prefill(reference.input_ids, { allLogits: true });
      const error = maxAbs(logits, reference.logits);
      measured['llama_gqa_tied f16 weights+kv'] = error;
      expect(error).toBeLessThan(0.1);
    } finally {
      model.dispose();
    }
  });

  it('splits an embedding and tied LM head wider than the binding limit, logits exact', async () => {
    const name = 'llama_gqa_tied';
    const folder = await loadModelFolder(join(root, name));
    const reference = JSON.parse(
      readFileSync(join(root, name, 'reference.json'), 'utf8'),
    ) as Reference;
    const { vocabSize, hiddenSize } = folder.config;
    expect(folder.model.lmHead).toBeNull();
    // 100 rows of the 320-row table per binding: chunks of 100, 100, 100 and 20 rows, and at most
    // 20 rows of all-position logits per prefill submit.
    const maxBindingBytes = 100 * hiddenSize * 4;
    const model = createModel(ctx, folder.model, { maxSeqLen: 48, maxBindingBytes });
    try {
      expect(model.fit.notes).toContain('embedding (0.1 MiB) is split into 4 chunks');
      const logits = await model.prefill(reference.input_ids, { allLogits: true });
      expect(model.timings.prefill.submits).toBe(
        Math.ceil(reference.input_ids.length / Math.floor(maxBindingBytes / (vocabSize * 4))),
      );
      const error = maxAbs(logits, reference.logits);
      measured[`${name} split table prefill`] = error;
      expect(error).toBeLessThan(1e-3);
      model.reset();
      await model.prefill(reference.input_ids.slice(0, -1));
      const last = await model.decodeStep(reference.input_ids.at(-1)!);
      const decodeError = maxAbs(last, reference.logits.slice(-vocabSize));
      measured[`${name} split table decode`] = decodeError;
      expect(decodeError).toBeLessThan(1e-3);
      const result = await model.generate(reference.prompt_ids, {
        maxNewTokens: 32,
        stopTokens: [],
      });
      expect(result.ids).toEqual(reference.greedy_ids);
    } finally {
      model.dispose();
    }
  });

  it('names unknown attention methods and unsupported architectures', async () => {
    expect(() => resolveAttention({ prefill: 'nope' }, 2)).toThrow(
      /unknown prefill attention method 'nope'.*available: dense/,
    );
    expect(() => resolveAttention({ layers: [null, { decode: 'quest?' }] }, 2)).toThrow(
      /decode attention method 'quest\?' for layer 1/,
    );
    const folder = await loadModelFolder(join(root, 'gpt2'));
    expect(() =>
      createModel(ctx, folder.model, { maxSeqLen: 32, attention: { decode: 'x' } }),
    ).toThrow(/unknown decode attention method 'x'/);
    await expect(loadModelFolder(join(root, 'missing'))).rejects.toThrow(/does not exist/);
  });
});
