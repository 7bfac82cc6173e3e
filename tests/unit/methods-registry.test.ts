import { describe, expect, it } from 'vitest';
import { attentionReference, type ReferenceInput } from '../../src/kernels/attention.reference';
import { defaultScale } from '../../src/kernels/layout';
import {
  blockCounts,
  blockMaskFromMaskMod,
  causalTotal,
  computedCount,
} from '../../src/methods/reference/masks';
import { sparseAttention } from '../../src/methods/reference/sparseAttention';
import { getMethod, METHODS, methodsFor } from '../../src/methods/registry';
import {
  resolveParams,
  type MethodParams,
  type MethodShape,
  type Phase,
} from '../../src/methods/types';
import { compileMaskMod, DEFAULT_MASK_MOD, UserPatternError } from '../../src/methods/userPattern';
import { maxAbsError, randomFloats } from '../support/random';

const heads = { numHeads: 4, numKvHeads: 2, headDim: 16 };
const prefillShape: MethodShape = { ...heads, numQueries: 96, qStart: 32 };
const decodeShape: MethodShape = { ...heads, numQueries: 1, qStart: 199 };
const shapeOf = (phase: Phase) => (phase === 'prefill' ? prefillShape : decodeShape);

function inputFor(shape: MethodShape, seed: number): ReferenceInput {
  const keys = shape.qStart + shape.numQueries;
  return {
    ...shape,
    scale: defaultScale(shape.headDim),
    q: randomFloats(shape.numQueries * shape.numHeads * shape.headDim, seed, 2),
    k: randomFloats(keys * shape.numKvHeads * shape.headDim, seed + 1, 2),
    v: randomFloats(keys * shape.numKvHeads * shape.headDim, seed + 2),
  };
}

const SPARSITY_GRID = [0, 0.33, 0.5, 0.6, 0.7, 0.8, 0.87, 0.9, 0.93, 0.95];

/** Params that actually drop something on the small test shapes (the paper's defaults do not). */
const SPARSE_PARAMS: Record<string, Partial<MethodParams>> = {
  dense: {},
  vertical_slash: { verticalSize: 12, lastQ: 32, localDiagonals: 8, block: 16 },
  flexprefill: { alpha: 0.5, minBudget: 8, approximationSize: 32, localDiagonals: 8 },
  block_sparse: { topChunks: 3 },
  blasst: { lambda: 1, block: 16, order: 'sink-recent-first' },
  sliding_window: { window: 20, block: 16 },
  quest: { tokenBudget: 48 },
  snapkv: { capacity: 60, window: 16, localWindow: 16, poolKernel: 5 },
  ada_snapkv: { capacity: 60, window: 16, localWindow: 16, poolKernel: 5 },
  user_pattern: { source: '(b, h, q, kv) => (q + kv + h) % 3 === 0 || kv < 2', block: 16 },
};

describe('the method registry', () => {
  it('lists the ten methods once each, in a fixed order', () => {
    expect(METHODS.map((m) => m.name)).toEqual([
      'dense',
      'vertical_slash',
      'flexprefill',
      'block_sparse',
      'blasst',
      'sliding_window',
      'quest',
      'snapkv',
      'ada_snapkv',
      'user_pattern',
    ]);
    expect(new Set(METHODS.map((m) => m.name)).size).toBe(METHODS.length);
    for (const m of METHODS) {
      expect(m.name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(getMethod(m.name)).toBe(m);
      expect(m.label && m.description && m.citation && m.sparsityMapping).toBeTruthy();
      expect(m.phases.length).toBeGreaterThan(0);
      // Either a GPU path or the reason it is missing.
      expect(Boolean(m.run) !== Boolean(m.runUnavailable)).toBe(true);
    }
    expect(() => getMethod('nope')).toThrow(
      /unknown .*"nope".*dense, vertical_slash.*user_pattern/,
    );
    expect(methodsFor('decode').map((m) => m.name)).toEqual([
      'dense',
      'blasst',
      'sliding_window',
      'quest',
      'snapkv',
      'ada_snapkv',
      'user_pattern',
    ]);
    expect(methodsFor('prefill').map((m) => m.name)).not.toContain('quest');
  });

  it.each(METHODS.map((m) => [m.name, m] as const))('%s: param specs are valid', (_n, m) => {
    const keys = m.params.map((p) => p.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(m.params.filter((p) => p.sparsityKnob).length).toBe(m.name === 'dense' ? 0 : 1);
    for (const p of m.params) {
      expect(p.label && p.description).toBeTruthy();
      if (p.kind === 'int' || p.kind === 'float') {
        expect(typeof p.default).toBe('number');
        expect(p.min).toBeDefined();
        expect(p.max).toBeDefined();
        expect(p.min!).toBeLessThanOrEqual(p.default as number);
        expect(p.default as number).toBeLessThanOrEqual(p.max!);
        if (p.kind === 'int') expect(Number.isInteger(p.default)).toBe(true);
        expect(p.step! > 0).toBe(true);
      } else if (p.kind === 'choice') {
        expect(p.options).toContain(p.default);
      } else if (p.kind === 'bool') {
        expect(typeof p.default).toBe('boolean');
      } else {
        expect(typeof p.default).toBe('string');
      }
    }
    expect(resolveParams(m.params)).toEqual(
      Object.fromEntries(m.params.map((p) => [p.key, p.default])),
    );
    expect(() => resolveParams(m.params, { bogus: 1 })).toThrow(/unknown parameter "bogus"/);
  });

  it('rejects out-of-range and mistyped params', () => {
    const window = getMethod('sliding_window');
    expect(() => resolveParams(window.params, { window: 0 })).toThrow(/window = 0: below 1/);
    expect(() => resolveParams(window.params, { window: 2.5 })).toThrow(/not an integer/);
    expect(() => resolveParams(window.params, { block: 32 })).toThrow(/not one of 16, 64/);
  });

  it.each(METHODS.map((m) => [m.name, m] as const))(
    '%s: paramsForSparsity answers the whole grid, its knob monotone in s',
    (_n, m) => {
      const knob = m.params.find((p) => p.sparsityKnob);
      for (const phase of m.phases) {
        const values = SPARSITY_GRID.map((s) => {
          const params = m.paramsForSparsity(s, shapeOf(phase));
          expect(resolveParams(m.params, params)).toEqual(params);
          return knob ? (params[knob.key] as number) : 0;
        });
        for (let i = 1; i < values.length; i++) {
          if (knob?.sparsityKnob === 'increasing')
            expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
          else expect(values[i]).toBeLessThanOrEqual(values[i - 1]);
        }
      }
      expect(() => m.paramsForSparsity(0.99, prefillShape)).toThrow(/\[0, 0.95\]/);
      expect(() => m.paramsForSparsity(-0.1, prefillShape)).toThrow();
    },
  );

  it('exact and nominal mappings move the measured sparsity with s', () => {
    for (const name of ['sliding_window', 'block_sparse', 'vertical_slash']) {
      const m = getMethod(name);
      const input = inputFor(prefillShape, 5);
      const measured = [0, 0.5, 0.9].map(
        (s) => m.reference(input, m.paramsForSparsity(s, prefillShape)).measuredSparsity,
      );
      expect(measured[0]).toBe(0);
      expect(measured[2]).toBeGreaterThan(measured[0]);
    }
  });
});

const cases = METHODS.flatMap((m) => m.phases.map((phase) => [m.name, phase, m] as const));

describe('every method\u2019s reference', () => {
  it.each(cases)('%s (%s) at sparsity 0 reproduces dense attention', (_n, phase, m) => {
    const shape = shapeOf(phase);
    const input = inputFor(shape, 11);
    const result = m.reference(input, m.paramsForSparsity(0, shape));
    const check = maxAbsError(result.output, attentionReference(input));
    expect(check.magnitude).toBeGreaterThan(0);
    expect(check.error).toBeLessThanOrEqual(1e-9);
    expect(result.measuredSparsity).toBe(0);
    expect(result.recall).toBeCloseTo(1, 12);
  });

  it.each(cases)('%s (%s): measured sparsity is the mask\u2019s count', (_n, phase, m) => {
    const shape = shapeOf(phase);
    const input = inputFor(shape, 21);
    const result = m.reference(input, SPARSE_PARAMS[m.name]);
    const { mask } = result;
    expect(mask.numQueries).toBe(shape.numQueries);
    expect(result.measuredSparsity).toBe(1 - computedCount(mask) / causalTotal(mask));
    if (m.name !== 'dense') expect(result.measuredSparsity).toBeGreaterThan(0);
    expect(result.recall).toBeGreaterThan(0);
    expect(result.recall).toBeLessThanOrEqual(1 + 1e-12);
    // The output is sparse attention on the reported mask.
    const check = maxAbsError(result.output, sparseAttention(input, mask).out);
    expect(check.error).toBeLessThanOrEqual(1e-9);
    expect(result.units.touched).toBeLessThanOrEqual(result.units.total);
    if (result.kept.kind === 'blocks' && result.units.unit === 'token') {
      // User patterns in decode: each KV head reads every token of the key blocks its group's
      // query heads list.
      expect(phase).toBe('decode');
      expect(result.kept.mask).toBe(mask);
      const group = shape.numHeads / shape.numKvHeads;
      const keys = shape.qStart + 1;
      let read = 0;
      for (let g = 0; g < shape.numKvHeads; g++) {
        const listed = new Set<number>();
        for (let h = g * group; h < (g + 1) * group; h++) {
          mask.keyBlock.subarray(mask.rowStart[h], mask.rowStart[h + 1]).forEach((kb) => {
            listed.add(kb);
          });
        }
        for (const kb of listed) read += Math.min(mask.blockK, keys - kb * mask.blockK);
      }
      expect(result.units).toEqual({
        unit: 'token',
        touched: read,
        total: keys * shape.numKvHeads,
      });
    } else if (result.kept.kind === 'blocks') {
      expect(result.kept.mask).toBe(mask);
      expect(result.units).toEqual({
        unit: 'block',
        touched: blockCounts(mask).touched,
        total: blockCounts(mask).causal,
      });
    } else {
      const kept = result.kept.perKvHead;
      expect(kept.length).toBe(shape.numKvHeads);
      const size = result.kept.kind === 'pages' ? result.kept.pageSize : 1;
      const keys = shape.qStart + shape.numQueries;
      // Decode: one query per head; each query head reads its KV head's kept tokens.
      const tokens = kept.map((list) =>
        list.reduce((n, unit) => n + Math.min(size, keys - unit * size), 0),
      );
      const group = shape.numHeads / shape.numKvHeads;
      expect(computedCount(mask)).toBe(tokens.reduce((a, b) => a + b, 0) * group);
    }
  });

  it('SnapKV scores the prompt when given it, and keeps the tokens decoded since', () => {
    const m = getMethod('snapkv');
    const input = inputFor(decodeShape, 31);
    const promptKeys = 150 * heads.numKvHeads * heads.headDim;
    const observation: ReferenceInput = {
      ...inputFor({ ...heads, numQueries: 150, qStart: 0 }, 32),
      k: Array.from(input.k).slice(0, promptKeys),
      v: Array.from(input.v).slice(0, promptKeys),
    };
    const result = m.reference({ ...input, observation }, SPARSE_PARAMS.snapkv);
    if (result.kept.kind !== 'tokens') throw new Error('SnapKV keeps tokens');
    for (const list of result.kept.perKvHead) {
      expect(list.length).toBe(60);
      expect(Math.max(...list)).toBeLessThan(150);
    }
    // 60 kept prompt tokens and the 50 decoded since, per query head.
    expect(computedCount(result.mask)).toBe(heads.numHeads * (60 + 50));
    expect(result.units).toEqual({ unit: 'token', touched: 2 * 110, total: 2 * 200 });
  });
});

describe('user_pattern', () => {
  const m = getMethod('user_pattern');
  const input = inputFor(prefillShape, 41);

  it('builds the mask_mod\u2019s block mask (FlexAttention convention, absolute positions)', () => {
    const source = [
      'const doc = (i) => Math.floor(i / 40);',
      'function mask_mod(b, h, q_idx, kv_idx) {',
      '  return doc(q_idx) === doc(kv_idx) || kv_idx < sinks;',
      '}',
    ].join('\n');
    const result = m.reference(input, { source, sinks: 2, block: 16 });
    // The source never names h, so one head is converted for all (the conversion's own test
    // checks that this equals the per-head one).
    const expected = blockMaskFromMaskMod(
      { ...prefillShape, blockQ: 16, blockK: 16 },
      (_b, _h, q, kv) => Math.floor(q / 40) === Math.floor(kv / 40) || kv < 2,
      { sameForEveryHead: true },
    );
    for (const key of ['rowStart', 'keyBlock', 'blockKind', 'rule'] as const) {
      expect(result.mask[key]).toEqual(expected[key]);
    }
    expect(result.measuredSparsity).toBeGreaterThan(0.3);
    expect(m.reference(input, m.paramsForSparsity(0.5, prefillShape)).measuredSparsity).toBeCloseTo(
      getMethod('sliding_window').reference(
        input,
        getMethod('sliding_window').paramsForSparsity(0.5, prefillShape),
      ).measuredSparsity,
      12,
    );
  });

  function errorOf(source: string): UserPatternError {
    try {
      m.reference(input, { source, block: 16 });
    } catch (error) {
      expect(error).toBeInstanceOf(UserPatternError);
      return error as UserPatternError;
    }
    throw new Error('no error');
  }

  it('reports syntax errors with the user\u2019s line', () => {
    const e = errorOf('function mask_mod(b, h, q, kv) {\n  const x = 1;\n  return x + ;\n}');
    expect(e.line).toBe(3);
    expect(e.message).toMatch(/line 3: SyntaxError/);
    const unclosed = errorOf('// a comment\nfunction mask_mod(b, h, q, kv) {\n  return q >= kv;\n');
    expect(unclosed.line).toBe(3);
    expect(unclosed.message).toMatch(/unclosed bracket/);
    expect(errorOf('const = 2;\nfunction mask_mod() { return true; }').line).toBe(1);
  });

  it('reports runtime errors with the user\u2019s line and the element', () => {
    const e = errorOf('function mask_mod(b, h, q, kv) {\n  const x = 1;\n  return y > x;\n}');
    expect(e.line).toBe(3);
    expect(e.message).toMatch(/ReferenceError: y is not defined \(at h=0, q_idx=32, kv_idx=0\)/);
    expect(errorOf('(b, h, q, kv) =>\n\n  q.foo.bar').line).toBe(3);
    expect(errorOf('const a = 1;\nfoo.bar = 2;\nfunction mask_mod() { return true; }').line).toBe(
      2,
    );
  });

  it('rejects sources without a mask_mod and non-boolean results', () => {
    expect(errorOf('const a = 1;').message).toMatch(/define a function mask_mod/);
    expect(errorOf('function mask_mod(b, h, q, kv) {\n  q > kv;\n}').message).toMatch(
      /must return a boolean, got undefined/,
    );
    expect(compileMaskMod('(b, h, q, kv) => q - kv')(0, 0, 3, 3)).toBe(false);
  });

  it('tells from the source whether mask_mod can depend on h', () => {
    const ignores = (source: string) => compileMaskMod(source).ignoresHead;
    expect(ignores(DEFAULT_MASK_MOD)).toBe(true);
    expect(ignores('function mask_mod(b, head, q, kv) {\n  return q - kv < 8;\n}')).toBe(true);
    expect(ignores('(b) => true')).toBe(true);
    expect(ignores('(b, h, q, kv) => q >= kv && h.toString() !== ""')).toBe(false);
    expect(ignores('(b, h, q, kv) => h % 2 === 0 || q - kv < 4')).toBe(false);
    expect(ignores('function mask_mod(b, h, q, kv) { return arguments[1] > 0; }')).toBe(false);
    expect(ignores('function mask_mod(b, [h], q, kv) { return q >= kv; }')).toBe(false);
    expect(ignores('function mask_mod(b, h = 0, q, kv) { return q >= kv; }')).toBe(false);
    // A word h anywhere in the body (here an object key) counts as using it.
    expect(ignores('(b, h, q, kv) => ({ h: 1 }).h === 1')).toBe(false);
    // Head-dependent masks still differ per head through the method.
    const perHead = m.reference(input, {
      source: '(b, h, q, kv) => (h === 0 ? q - kv < 4 : kv < 8)',
      block: 16,
    });
    const { mask } = perHead;
    const rows = mask.numQueryBlocks;
    expect(mask.keyBlock.slice(mask.rowStart[rows], mask.rowStart[2 * rows])).not.toEqual(
      mask.keyBlock.slice(0, mask.rowStart[rows]),
    );
  });

  it('shadows the usual globals', () => {
    expect(
      compileMaskMod('(b, h, q, kv) => globalThis === undefined && fetch === undefined')(
        0,
        0,
        0,
        0,
      ),
    ).toBe(true);
  });
});
