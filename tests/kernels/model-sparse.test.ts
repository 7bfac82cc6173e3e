import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { blockCounts } from '../../src/methods/reference/masks';
import { getMethod } from '../../src/methods/registry';
import { slidingWindow } from '../../src/methods/reference/slidingWindow';
import { loadModelFolder, type ModelFolder } from '../../src/model/load';
import { resolveAttention, type AttentionOptions } from '../../src/model/runtime/attention';
import { createModel, type AttentionStats } from '../../src/model/runtime/model';
import { sharedGpuContext } from '../support/gpu';

const root = join(import.meta.dirname, '../fixtures/models');
// 64 prompt tokens: 4 blocks of 16, 4 pages of 16; then 2 decode steps.
const prompt = Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 320);
const next = [5, 17];

let ctx: GpuContext;
let folder: ModelFolder;
beforeAll(async () => {
  ctx = await sharedGpuContext();
  folder = await loadModelFolder(join(root, 'llama_gqa_tied'));
});

interface Run {
  prefill: Float32Array;
  decode: Float32Array[];
  stats: AttentionStats;
}

async function run(attention: AttentionOptions, ids = prompt, prefillChunk?: number): Promise<Run> {
  const model = createModel(ctx, folder.model, {
    maxSeqLen: ids.length + 32,
    attention,
    prefillChunk,
  });
  try {
    const prefill = await model.prefill(ids, { allLogits: true });
    const decode: Float32Array[] = [];
    for (const id of next) decode.push(await model.decodeStep(id));
    return { prefill, decode, stats: model.stats };
  } finally {
    model.dispose();
  }
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

const finite = (r: Run) =>
  [r.prefill, ...r.decode].every((row) => row.every((v) => Number.isFinite(v)));

describe('sparse attention in the model (llama_gqa_tied)', () => {
  let dense: Run;
  beforeAll(async () => {
    dense = await run({});
  });

  it('dense records sparsity 0 for every layer and phase', () => {
    for (const phase of ['prefill', 'decode'] as const) {
      expect(dense.stats[phase]).toHaveLength(2);
      for (const layer of dense.stats[phase]) {
        expect(layer.method).toBe('dense');
        expect(layer.sparsity).toBe(0);
        expect(layer.touched).toBe(layer.total);
      }
    }
  });

  it('keep-everything parameters reproduce the dense logits within 1e-4', async () => {
    const runs: [string, AttentionOptions][] = [
      [
        'block_sparse + quest',
        {
          prefill: { name: 'block_sparse', params: { topChunks: 4, chunkSize: 16 } },
          decode: { name: 'quest', params: { tokenBudget: 96 } },
        },
      ],
      [
        'sliding_window + blasst',
        {
          prefill: { name: 'sliding_window', params: { window: 128, sinks: 0, block: 16 } },
          decode: { name: 'blasst', params: { lambda: 0 } },
        },
      ],
      ['blasst prefill', { prefill: { name: 'blasst', params: { lambda: 0 } } }],
    ];
    for (const [label, attention] of runs) {
      const sparse = await run(attention);
      expect(maxAbs(sparse.prefill, dense.prefill), label).toBeLessThan(1e-4);
      sparse.decode.forEach((row, i) => {
        expect(maxAbs(row, dense.decode[i]), label).toBeLessThan(1e-4);
      });
      for (const phase of ['prefill', 'decode'] as const) {
        for (const layer of sparse.stats[phase]) expect(layer.sparsity, label).toBe(0);
      }
    }
  });

  it('sparsifying parameters record the per-layer sparsity the kernels counted', async () => {
    const a = await run({
      prefill: { name: 'block_sparse', params: { topChunks: 3, chunkSize: 16 } },
      decode: { name: 'quest', params: { tokenBudget: 16 } },
    });
    expect(finite(a)).toBe(true);
    for (const layer of a.stats.prefill) {
      // 4 heads x (1 + 2 + 3 + 4) causal blocks; the last query block keeps 3 of 4.
      expect(layer).toMatchObject({ method: 'block_sparse', unit: 'blocks', calls: 1 });
      expect([layer.touched, layer.total]).toEqual([4 * 9, 4 * 10]);
      expect(layer.sparsity).toBeCloseTo(0.1, 12);
    }
    for (const layer of a.stats.decode) {
      // 2 KV heads; kvLen 65 then 66: 5 pages, 1 complete page in budget + the current one.
      expect(layer).toMatchObject({ method: 'quest', unit: 'pages', calls: 2 });
      expect([layer.touched, layer.total]).toEqual([2 * 2 * 2, 2 * 5 * 2]);
      expect(layer.sparsity).toBeGreaterThan(0);
    }

    const window = { window: 8, sinks: 0, blockQ: 16, blockK: 16 };
    const expected = blockCounts(
      slidingWindow({ numHeads: 4, numQueries: prompt.length, qStart: 0 }, window),
    );
    const b = await run({
      prefill: { name: 'sliding_window', params: { window: 8, sinks: 0, block: 16 } },
      decode: { name: 'blasst', params: { lambda: 1, block: 16 } },
    });
    expect(finite(b)).toBe(true);
    for (const layer of b.stats.prefill) {
      expect([layer.touched, layer.total]).toEqual([expected.touched, expected.causal]);
      expect(layer.sparsity).toBeGreaterThan(0);
    }
    for (const layer of b.stats.decode) {
      expect(layer).toMatchObject({ method: 'blasst', unit: 'blocks', calls: 2 });
      // 2 KV heads x 5 blocks of 16 per step.
      expect(layer.total).toBe(2 * 5 * 2);
      expect(layer.sparsity).toBeGreaterThan(0);
    }

    // BLASST votes per query tile of the dense kernel (128 or 256 rows): a longer prompt.
    const long = Array.from({ length: 224 }, (_, i) => (i * 53 + 7) % 320);
    const c = await run({ prefill: { name: 'blasst', params: { lambda: 1 } } }, long);
    expect(finite(c)).toBe(true);
    for (const layer of c.stats.prefill) {
      expect(layer).toMatchObject({ method: 'blasst', unit: 'blocks', calls: 1 });
      expect(layer.touched).toBeLessThanOrEqual(layer.total);
      expect(layer.sparsity).toBeCloseTo(1 - layer.touched / layer.total, 12);
    }
    // On this tiny model BLASST skips few tiles (layer 0 none): some layer must skip one.
    expect(Math.max(...c.stats.prefill.map((layer) => layer.sparsity))).toBeGreaterThan(0);
  });

  it('a sinks + window mask_mod decodes as sliding window does, reading whole key blocks', async () => {
    const sinksWindow = { window: 20, sinks: 4 };
    const slid = await run({ decode: { name: 'sliding_window', params: sinksWindow } });
    const user = await run({
      decode: { name: 'user_pattern', params: { ...sinksWindow, block: 16 } },
    });
    expect(finite(user)).toBe(true);
    user.decode.forEach((row, i) => expect(maxAbs(row, slid.decode[i])).toBeLessThan(1e-4));
    expect(maxAbs(user.decode[1], dense.decode[1])).toBeGreaterThan(1e-4);
    for (const layer of user.stats.decode) {
      // 2 KV heads; kvLen 65 then 66: block 0 (the sinks) and blocks 2 .. 4 (the window).
      expect(layer).toMatchObject({ method: 'user_pattern', unit: 'tokens', calls: 2 });
      expect([layer.touched, layer.total]).toEqual([
        2 * (16 + 32 + 1 + 16 + 32 + 2),
        2 * (65 + 66),
      ]);
    }
    // The head's own mask, not its group's union: heads of a group keep different keys.
    const byHead = await run({
      decode: {
        name: 'user_pattern',
        params: { source: '(b, h, q, kv) => q - kv < 8 + 12 * h || kv < 4', block: 16 },
      },
    });
    expect(finite(byHead)).toBe(true);
    const union = await run({
      decode: {
        name: 'user_pattern',
        params: { source: '(b, h, q, kv) => q - kv < 8 + 12 * (h | 1) || kv < 4', block: 16 },
      },
    });
    expect(maxAbs(byHead.decode[1], union.decode[1])).toBeGreaterThan(1e-4);
    expect(byHead.stats.decode.map((l) => l.touched)).toEqual(
      union.stats.decode.map((l) => l.touched),
    );
  });

  it('Vertical-Slash and FlexPrefill plan, pack their masks and attend on the GPU, chunk by chunk', async () => {
    // 224 tokens in 4 chunks of 64: one 64-token query block per chunk over 1 .. 4 key blocks, the
    // plans of both layers in one pass per chunk, sharing the step's scratch buffers.
    const long = Array.from({ length: 224 }, (_, i) => (i * 53 + 7) % 320);
    const denseLong = await run({}, long, 64);
    const shape = { numHeads: 4, numKvHeads: 2, headDim: 16, numQueries: long.length, qStart: 0 };
    for (const name of ['vertical_slash', 'flexprefill']) {
      const keepAll = getMethod(name).paramsForSparsity(0, shape);
      const same = await run({ prefill: { name, params: keepAll } }, long, 64);
      expect(maxAbs(same.prefill, denseLong.prefill), name).toBeLessThan(1e-4);
      for (const layer of same.stats.prefill) {
        expect(layer, name).toMatchObject({ method: name, unit: 'blocks', calls: 4 });
        expect([layer.touched, layer.total], name).toEqual([4 * 10, 4 * 10]);
      }
    }
    const sparse = await run(
      { prefill: { name: 'vertical_slash', params: { verticalSize: 2, lastQ: 16 } } },
      long,
      64,
    );
    expect(finite(sparse)).toBe(true);
    expect(maxAbs(sparse.prefill, denseLong.prefill)).toBeGreaterThan(1e-4);
    for (const layer of sparse.stats.prefill) {
      expect(layer.total).toBe(4 * 10);
      expect(layer.touched).toBeLessThan(layer.total);
    }
  });

  it('per-layer overrides: layer 0 dense keeps sparsity 0', async () => {
    const r = await run({
      prefill: { name: 'block_sparse', params: { topChunks: 3, chunkSize: 16 } },
      decode: { name: 'quest', params: { tokenBudget: 16 } },
      layers: [{ prefill: 'dense', decode: 'dense' }],
    });
    expect(finite(r)).toBe(true);
    for (const phase of ['prefill', 'decode'] as const) {
      expect(r.stats[phase][0]).toMatchObject({ method: 'dense', sparsity: 0 });
      expect(r.stats[phase][1].sparsity).toBeGreaterThan(0);
    }
  });

  it('names unknown methods, parameters and unsupported combinations', async () => {
    expect(() => resolveAttention({ prefill: 'quest' }, 2)).toThrow(
      /prefill attention method 'quest' is a decode method \(available for prefill: dense, vertical_slash, flexprefill, block_sparse, blasst, sliding_window, user_pattern\)/,
    );
    expect(() => resolveAttention({ decode: 'block_sparse' }, 2)).toThrow(
      /available for decode: dense, blasst, sliding_window, quest, snapkv, ada_snapkv, user_pattern/,
    );
    expect(() => resolveAttention({ prefill: 'nope' }, 2)).toThrow(
      /unknown prefill attention method 'nope' \(available: dense, vertical_slash/,
    );
    expect(() =>
      resolveAttention({ decode: { name: 'quest', params: { budget: 16 } } }, 2),
    ).toThrow(/decode method 'quest': unknown parameter "budget" \(known: tokenBudget, pageSize\)/);
    expect(() =>
      resolveAttention({ prefill: { name: 'block_sparse', params: { chunkSize: 32 } } }, 2),
    ).toThrow(/chunkSize = 32: not one of 16, 64/);
    expect(() =>
      resolveAttention(
        { layers: [null, { prefill: { name: 'blasst', params: { lambda: 2 } } }] },
        2,
      ),
    ).toThrow(/prefill method 'blasst' for layer 1: parameter lambda = 2: above 1/);
    const model = createModel(ctx, folder.model, {
      maxSeqLen: 32,
      prefillChunk: 8,
      attention: { prefill: { name: 'block_sparse', params: { topChunks: 3 } } },
    });
    try {
      await expect(model.prefill(prompt.slice(0, 16))).rejects.toThrow(/multiple of chunkSize/);
    } finally {
      model.dispose();
    }
  });
});
