import { describe, expect, it } from 'vitest';
import { composeShader, shaderNames } from '../../src/gpu/shaders';
import { evaluateConstant, integerConstants, unrollLoops } from '../../src/gpu/unroll';

describe('shader preprocessor', () => {
  it('finds every shader under shaders/', () => {
    expect(shaderNames()).toEqual(
      expect.arrayContaining([
        'attention/dense_prefill',
        'attention/dense_decode',
        'bench/copy_vec4',
      ]),
    );
  });

  it('emits defines as consts, keeps #if branches and pastes includes once', () => {
    const f32 = composeShader('common/paged_kv', { HEAD_DIM: 64, KV_F16: false });
    expect(f32).toContain('const HEAD_DIM = 64;');
    expect(f32).toContain('const KV_ROW_WORDS = HEAD_DIM;');
    expect(f32).not.toContain('HEAD_DIM / 2');
    const f16 = composeShader('common/paged_kv', { HEAD_DIM: 64, KV_F16: true });
    expect(f16).toContain('const KV_ROW_WORDS = HEAD_DIM / 2;');
    const prefill = composeShader('attention/dense_prefill', {
      HEAD_DIM: 64,
      NUM_KV_HEADS: 2,
      PAGE_SIZE: 16,
      KV_F16: false,
      SUBGROUPS: true,
      LANES: 4,
      ROWS_PER_THREAD: 2,
      ROW_GROUPS: 32,
      KEYS_PER_TILE: 32,
      KEYS_PER_CHUNK: 8,
    });
    expect(prefill.match(/fn kv_row_word/g)).toHaveLength(1);
    expect(prefill).not.toMatch(/^#/m);
  });

  it('puts directives before the defines, as WGSL requires', () => {
    const text = composeShader('attention/dense_decode', {
      HEAD_DIM: 64,
      NUM_KV_HEADS: 2,
      PAGE_SIZE: 16,
      KV_F16: false,
      GROUP: 2,
      LANES: 8,
      VECS_PER_LANE: 2,
      ROWS: 16,
      UNROLL: 2,
      HEAD_CHUNK: 2,
      WORKGROUP_SIZE: 128,
      SUBGROUPS: true,
    });
    expect(text.split('\n')[0]).toBe('enable subgroups;');
    expect(text.match(/enable subgroups;/g)).toHaveLength(1);
  });
});

describe('#unroll', () => {
  it('evaluates integer constant expressions with WGSL integer division', () => {
    const constants = new Map([['HEAD_DIM', 128]]);
    expect(evaluateConstant('HEAD_DIM / 3u', constants)).toBe(42);
    expect(evaluateConstant('(HEAD_DIM - 8) % 5 * 2', constants)).toBe(0);
    expect(() => evaluateConstant('HEAD_DIM + 0.5', constants)).toThrow();
    expect(() => evaluateConstant('UNKNOWN * 2', constants)).toThrow(/unknown constant UNKNOWN/);
  });

  it('collects module consts in order and skips floats', () => {
    const constants = integerConstants([
      'const A = 4;',
      'const B: u32 = A * 2u;',
      'const C = 1.5;',
      'const D = B / A;',
      '  const INNER = 3;',
    ]);
    expect([...constants]).toEqual([
      ['A', 4],
      ['B', 8],
      ['D', 2],
    ]);
  });

  it('repeats the body with the index bound to each value, nested loops included', () => {
    const lines = [
      '#unroll',
      'for (var i = 0u; i < N; i++) {',
      '  #unroll',
      '  for (var j = 1u; j < 3u; j++) {',
      '    x[i][j] = f(i, j);',
      '  }',
      '}',
      'tail();',
    ];
    const out = unrollLoops(lines, new Map([['N', 2]]));
    expect(out.filter((line) => line.includes('x[i][j]'))).toHaveLength(4);
    expect(out.filter((line) => /let i = \du;/.test(line)).map((l) => l.trim())).toEqual([
      'let i = 0u;',
      'let i = 1u;',
    ]);
    expect(out.filter((line) => /let j = \du;/.test(line))).toHaveLength(4);
    expect(out.at(-1)).toBe('tail();');
    expect(out.join('\n')).not.toContain('for (');
  });

  it('rejects a marker that does not precede a counted loop', () => {
    expect(() => unrollLoops(['#unroll', 'while (true) {', '}'], new Map())).toThrow(/#unroll/);
  });
});
