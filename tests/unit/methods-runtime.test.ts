import { describe, expect, it } from 'vitest';
import { plannedOnce } from '../../src/methods/inModel';
import { denseMask } from '../../src/methods/reference/masks';
import { METHODS, methodsFor } from '../../src/methods/registry';
import { resolveParams } from '../../src/methods/types';
import { resolveAttention, resolveMethod } from '../../src/model/runtime/attention';

describe('the model runtime resolves methods through the registry', () => {
  it('every registry method has an in-model hook for each of its phases, and only those', () => {
    for (const m of METHODS) {
      for (const phase of ['prefill', 'decode'] as const) {
        expect(typeof m.inModel[phase], `${m.name} ${phase}`).toBe(
          m.phases.includes(phase) ? 'function' : 'undefined',
        );
      }
    }
  });

  it('fills in the registry defaults and keeps given params', () => {
    for (const phase of ['prefill', 'decode'] as const) {
      for (const m of methodsFor(phase)) {
        expect(resolveMethod(phase, m.name)).toEqual({
          name: m.name,
          params: resolveParams(m.params),
        });
      }
    }
    const sources = '(b, h, q, kv) => q - kv < 4';
    expect(
      resolveMethod('decode', { name: 'user_pattern', params: { source: sources, block: 16 } })
        .params,
    ).toMatchObject({ source: sources, block: 16, window: 1024 });
  });

  it('per-layer overrides replace the defaults for their layer only', () => {
    const plan = resolveAttention(
      {
        prefill: { name: 'sliding_window', params: { window: 64 } },
        decode: 'quest',
        layers: [null, { prefill: 'dense', decode: { name: 'snapkv', params: { capacity: 256 } } }],
      },
      3,
    );
    expect(plan.prefill.map((m) => m.name)).toEqual(['sliding_window', 'dense', 'sliding_window']);
    expect(plan.prefill[2].params.window).toBe(64);
    expect(plan.decode.map((m) => m.name)).toEqual(['quest', 'snapkv', 'quest']);
    expect(plan.decode[1].params.capacity).toBe(256);
    expect(() => resolveAttention({ layers: [null, null, null] }, 2)).toThrow(
      /overrides name 3 layers, the model has 2/,
    );
  });

  it('names unknown methods, the wrong phase and bad params, and what to use instead', () => {
    expect(() => resolveMethod('prefill', 'nope')).toThrow(
      "unknown prefill attention method 'nope' (available: dense, vertical_slash, flexprefill, " +
        'block_sparse, blasst, sliding_window, user_pattern)',
    );
    expect(() => resolveMethod('prefill', 'snapkv')).toThrow(
      "prefill attention method 'snapkv' is a decode method (available for prefill: dense, " +
        'vertical_slash, flexprefill, block_sparse, blasst, sliding_window, user_pattern)',
    );
    expect(() => resolveAttention({ layers: [null, { decode: 'vertical_slash' }] }, 2)).toThrow(
      "decode attention method 'vertical_slash' for layer 1 is a prefill method (available for " +
        'decode: dense, blasst, sliding_window, quest, snapkv, ada_snapkv, user_pattern)',
    );
    expect(() => resolveMethod('decode', { name: 'quest', params: { budget: 64 } })).toThrow(
      `decode method 'quest': unknown parameter "budget" (known: tokenBudget, pageSize)`,
    );
    expect(() => resolveMethod('prefill', { name: 'flexprefill', params: { alpha: 1.5 } })).toThrow(
      "prefill method 'flexprefill': parameter alpha = 1.5: above 1",
    );
    expect(() =>
      resolveMethod('prefill', { name: 'block_sparse', params: { topChunks: 2.5 } }),
    ).toThrow("prefill method 'block_sparse': parameter topChunks = 2.5: not an integer");
    expect(() =>
      resolveMethod('prefill', { name: 'vertical_slash', params: { block: 32 } }),
    ).toThrow("prefill method 'vertical_slash': parameter block = 32: not one of 16, 64");
    expect(() => resolveMethod('decode', { name: 'user_pattern', params: { source: 3 } })).toThrow(
      "decode method 'user_pattern': parameter source = 3: not a string",
    );
    expect(() => resolveMethod('decode', { name: 'dense', params: { window: 3 } })).toThrow(
      `decode method 'dense': unknown parameter "window" (known: none)`,
    );
  });
});

describe('position-only masks are planned once for the layers of a step', () => {
  it('reuses the last mask for the same method, shape and params, and rebuilds on any change', () => {
    let builds = 0;
    const shape = { numHeads: 2, numQueries: 8, qStart: 0 };
    const plan = (s: typeof shape) => {
      builds++;
      return denseMask({ ...s, blockQ: 4, blockK: 4 });
    };
    const first = plannedOnce('sliding_window', shape, { window: 4 }, plan);
    expect(plannedOnce('sliding_window', shape, { window: 4 }, plan)).toBe(first);
    expect(builds).toBe(1);
    plannedOnce('sliding_window', shape, { window: 5 }, plan);
    plannedOnce('user_pattern', shape, { window: 5 }, plan);
    const longer = { ...shape, qStart: 8 };
    const rebuilt = plannedOnce('user_pattern', longer, { window: 5 }, plan);
    expect(builds).toBe(4);
    expect(rebuilt.qStart).toBe(8);
  });
});
