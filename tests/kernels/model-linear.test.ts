import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { packFloat16Pairs, roundToFloat16 } from '../../src/gpu/f16';
import { swiGluReference, type LinearActivation } from '../../src/kernels/model/activation';
import {
  planWeightChunks,
  submitOps,
  uploadWeightChunks,
  type WeightDtype,
} from '../../src/kernels/model/common';
import { createLinear, linearReference } from '../../src/kernels/model/linear';
import { normReference } from '../../src/kernels/model/norm';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

const withoutSubgroups = (c: GpuContext): GpuContext => ({
  ...c,
  caps: { ...c.caps, subgroups: false },
});

interface Case {
  name: string;
  tokens: number;
  inFeatures: number;
  outFeatures: number;
  dtype: WeightDtype;
  bias?: boolean;
  activation?: LinearActivation;
  accumulate?: boolean;
  noSubgroups?: boolean;
  /** Rows per weight chunk: an artificial storage-binding limit. */
  chunkRows?: number;
  /** Extra token rows before the input, skipped through inputOffset. */
  skipTokens?: number;
  /** Output columns from here on go to a second buffer. */
  splitAt?: number;
  /** x rows are gate | up; the input is silu(gate) * up. */
  gatedInput?: boolean;
  /** The input is RMSNorm(x). */
  rmsNorm?: boolean;
}

const cases: Case[] = [
  {
    name: 'decode 1 token f32 bias',
    tokens: 1,
    inFeatures: 64,
    outFeatures: 37,
    dtype: 'f32',
    bias: true,
  },
  { name: 'decode 3 tokens f16', tokens: 3, inFeatures: 40, outFeatures: 70, dtype: 'f16' },
  {
    name: 'decode 4 tokens f32 no subgroups',
    tokens: 4,
    inFeatures: 100,
    outFeatures: 130,
    dtype: 'f32',
    noSubgroups: true,
  },
  {
    name: 'decode 1 token f16 no subgroups bias',
    tokens: 1,
    inFeatures: 264,
    outFeatures: 65,
    dtype: 'f16',
    bias: true,
    noSubgroups: true,
  },
  {
    name: 'decode accumulate gelu_tanh',
    tokens: 2,
    inFeatures: 32,
    outFeatures: 16,
    dtype: 'f32',
    activation: 'gelu_tanh',
    accumulate: true,
  },
  {
    name: 'decode f16 split into chunks',
    tokens: 1,
    inFeatures: 64,
    outFeatures: 300,
    dtype: 'f16',
    bias: true,
    chunkRows: 100,
  },
  {
    name: 'decode last row via inputOffset',
    tokens: 1,
    inFeatures: 48,
    outFeatures: 33,
    dtype: 'f16',
    skipTokens: 6,
  },
  {
    name: 'prefill 5 tokens f32 bias',
    tokens: 5,
    inFeatures: 36,
    outFeatures: 67,
    dtype: 'f32',
    bias: true,
  },
  {
    name: 'decode split output, chunk across the split, bias',
    tokens: 1,
    inFeatures: 64,
    outFeatures: 96,
    dtype: 'f32',
    bias: true,
    splitAt: 40,
    chunkRows: 32,
  },
  {
    name: 'decode 2 tokens f16 split output no subgroups',
    tokens: 2,
    inFeatures: 48,
    outFeatures: 72,
    dtype: 'f16',
    splitAt: 24,
    noSubgroups: true,
  },
  {
    name: 'decode gated input accumulate',
    tokens: 1,
    inFeatures: 96,
    outFeatures: 40,
    dtype: 'f32',
    gatedInput: true,
    accumulate: true,
  },
  {
    name: 'decode 3 tokens f16 gated input no subgroups',
    tokens: 3,
    inFeatures: 64,
    outFeatures: 20,
    dtype: 'f16',
    gatedInput: true,
    noSubgroups: true,
  },
  {
    name: 'decode rmsnorm input, split output, chunks',
    tokens: 1,
    inFeatures: 576,
    outFeatures: 96,
    dtype: 'f32',
    rmsNorm: true,
    splitAt: 64,
    chunkRows: 40,
  },
  {
    name: 'decode 3 tokens f16 rmsnorm input, bias, gelu, no subgroups',
    tokens: 3,
    inFeatures: 1040,
    outFeatures: 50,
    dtype: 'f16',
    bias: true,
    activation: 'gelu_tanh',
    rmsNorm: true,
    noSubgroups: true,
  },
  {
    name: 'prefill split output, bias, chunks',
    tokens: 67,
    inFeatures: 32,
    outFeatures: 130,
    dtype: 'f32',
    bias: true,
    splitAt: 72,
    chunkRows: 64,
  },
  { name: 'prefill 70 tokens f32', tokens: 70, inFeatures: 100, outFeatures: 129, dtype: 'f32' },
  {
    name: 'prefill 65 tokens f16 bias gelu',
    tokens: 65,
    inFeatures: 48,
    outFeatures: 64,
    dtype: 'f16',
    bias: true,
    activation: 'gelu',
  },
  {
    name: 'prefill accumulate',
    tokens: 20,
    inFeatures: 64,
    outFeatures: 24,
    dtype: 'f32',
    accumulate: true,
  },
  {
    name: 'prefill f32 split into chunks',
    tokens: 9,
    inFeatures: 32,
    outFeatures: 150,
    dtype: 'f32',
    bias: true,
    chunkRows: 64,
  },
];

const measured: Record<string, number> = {};
afterAll(() => console.log('linear max error / max|ref|:', measured));

describe('linear (matvec and tiled matmul)', () => {
  it.each(cases)('$name', async (c) => {
    const gpu = c.noSubgroups ? withoutSubgroups(ctx) : ctx;
    const { device } = gpu;
    const { tokens, inFeatures, outFeatures, dtype } = c;
    const skip = c.skipTokens ?? 0;
    const xWidth = c.gatedInput ? 2 * inFeatures : inFeatures;
    const x = randomFloats((tokens + skip) * xWidth, 11 + tokens);
    const w = randomFloats(outFeatures * inFeatures, 23 + outFeatures);
    const bias = c.bias ? randomFloats(outFeatures, 5) : undefined;
    const residual = c.accumulate ? randomFloats(tokens * outFeatures, 7) : undefined;
    const rowBytes = inFeatures * (dtype === 'f16' ? 2 : 4);
    const maxBytes = c.chunkRows ? c.chunkRows * rowBytes : undefined;
    const weight = uploadWeightChunks(
      gpu,
      dtype === 'f16' ? packFloat16Pairs(w) : w,
      outFeatures,
      inFeatures,
      dtype,
      maxBytes,
    );
    if (c.chunkRows) expect(weight.length).toBe(Math.ceil(outFeatures / c.chunkRows));
    const split = c.splitAt ?? outFeatures;
    const norm = c.rmsNorm
      ? {
          kind: 'rmsnorm' as const,
          eps: 1e-5,
          weight: randomFloats(inFeatures, 3).map((v) => 1 + 0.5 * v),
        }
      : null;
    const columns = (rows: ArrayLike<number>, from: number, to: number) =>
      Float32Array.from({ length: tokens * (to - from) }, (_, i) => {
        const width = to - from;
        return rows[Math.floor(i / width) * outFeatures + from + (i % width)];
      });
    const target = (from: number, to: number) =>
      residual
        ? createStorageBuffer(device, columns(residual, from, to))
        : createEmptyBuffer(device, tokens * (to - from) * 4);
    const buffers = {
      x: createStorageBuffer(device, x),
      weight,
      bias: bias ? createStorageBuffer(device, bias) : undefined,
      out: target(0, split),
      out2: c.splitAt ? target(split, outFeatures) : undefined,
      normWeight: norm ? createStorageBuffer(device, norm.weight) : undefined,
    };
    const op = createLinear(
      gpu,
      {
        tokens,
        inFeatures,
        outFeatures,
        dtype,
        inputOffset: skip * xWidth,
        accumulate: c.accumulate,
        activation: c.activation,
        splitAt: c.splitAt,
        gatedInput: c.gatedInput,
        rmsNorm: norm ? { eps: norm.eps } : undefined,
      },
      buffers,
    );
    submitOps(gpu, [op]);
    const first = await readFloat32(device, buffers.out, tokens * split);
    const second = buffers.out2
      ? await readFloat32(device, buffers.out2, tokens * (outFeatures - split))
      : new Float32Array(0);
    const actual = Float32Array.from({ length: tokens * outFeatures }, (_, i) => {
      const [t, o] = [Math.floor(i / outFeatures), i % outFeatures];
      return o < split ? first[t * split + o] : second[t * (outFeatures - split) + o - split];
    });
    const rows = x.subarray(skip * xWidth);
    const normed = norm ? normReference({ ...norm, tokens, features: inFeatures, x: rows }) : rows;
    const input = c.gatedInput
      ? Array.from({ length: tokens }, (_, t) =>
          swiGluReference(
            rows.subarray(t * xWidth, t * xWidth + inFeatures),
            rows.subarray(t * xWidth + inFeatures, (t + 1) * xWidth),
          ),
        ).flatMap((row) => [...row])
      : normed;
    const expected = linearReference({
      tokens,
      inFeatures,
      outFeatures,
      x: input,
      weight: dtype === 'f16' ? roundToFloat16(w) : w,
      bias,
      activation: c.activation,
      residual,
    });
    const { error, magnitude } = maxAbsError(actual, expected);
    measured[c.name] = error / magnitude;
    expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
    op.dispose();
    for (const chunk of weight) chunk.buffer.destroy();
  });

  it('plans chunks under the binding limit', () => {
    const chunks = planWeightChunks(ctx, 151936, 896, 'f16', 128 << 20);
    expect(chunks.every((c) => c.rows * 896 * 2 <= 128 << 20)).toBe(true);
    expect(chunks.reduce((n, c) => n + c.rows, 0)).toBe(151936);
    expect(chunks.length).toBe(3);
  });

  it('rejects chunks that do not cover the weight', () => {
    const buffer = createEmptyBuffer(ctx.device, 64);
    const op = () =>
      createLinear(
        ctx,
        { tokens: 1, inFeatures: 4, outFeatures: 8, dtype: 'f32' },
        { x: buffer, weight: [{ buffer, rowStart: 0, rows: 4 }], out: buffer },
      );
    expect(op).toThrow(/cover 4 of 8/);
    const split = (splitAt: number, out2?: GPUBuffer) =>
      createLinear(
        ctx,
        { tokens: 1, inFeatures: 4, outFeatures: 4, dtype: 'f32', splitAt },
        { x: buffer, weight: [{ buffer, rowStart: 0, rows: 4 }], out: buffer, out2 },
      );
    expect(() => split(2)).toThrow(/splitAt and out2 go together/);
    expect(() => split(4, buffer)).toThrow(/splitAt 4 is not inside 1..3/);
    expect(() =>
      createLinear(
        ctx,
        { tokens: 5, inFeatures: 4, outFeatures: 4, dtype: 'f32', gatedInput: true },
        { x: buffer, weight: [{ buffer, rowStart: 0, rows: 4 }], out: buffer },
      ),
    ).toThrow(/gatedInput takes at most 4 tokens/);
    buffer.destroy();
  });
});
