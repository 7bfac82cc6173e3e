import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEmptyBuffer,
  createStorageBuffer,
  readBuffer,
  readFloat32,
} from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { packFloat16Pairs, roundToFloat16 } from '../../src/gpu/f16';
import { acquireNodeGpuContext } from '../../src/gpu/node';
import type { KvDtype } from '../../src/kernels/layout';
import {
  activationReference,
  createGelu,
  createSwiGlu,
  swiGluReference,
} from '../../src/kernels/model/activation';
import { submitOps, uploadWeightChunks, type WeightDtype } from '../../src/kernels/model/common';
import { createResidualAdd } from '../../src/kernels/model/elementwise';
import { createEmbedding, embeddingReference } from '../../src/kernels/model/embedding';
import { createKvWrite } from '../../src/kernels/model/kvWrite';
import { createNorm, normReference, type NormKind } from '../../src/kernels/model/norm';
import { createRope, ropeReference } from '../../src/kernels/model/rope';
import { packPagedPool, pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import { computeRopeInvFreq, type ModelConfig } from '../../src/model/loading/config';
import { maxAbsError, randomFloats } from '../support/random';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await acquireNodeGpuContext();
});
afterAll(() => ctx.device.destroy());

const measured: Record<string, number> = {};
afterAll(() => console.log('model ops max error / max|ref|:', measured));

/** Records the error relative to the reference's magnitude and checks it. */
function expectClose(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
): void {
  const { error, magnitude } = maxAbsError(actual, expected);
  measured[name] = error / magnitude;
  expect(magnitude).toBeGreaterThan(0);
  expect(error).toBeLessThanOrEqual(tolerance * magnitude);
}

describe('norms', () => {
  it.each<[NormKind, number, number]>([
    ['rmsnorm', 1, 64],
    ['rmsnorm', 7, 900],
    ['layernorm', 1, 36],
    ['layernorm', 5, 1028],
  ])('%s over %i rows of %i', async (kind, tokens, features) => {
    const { device } = ctx;
    const x = randomFloats(tokens * features, features, 3);
    for (let i = 0; i < x.length; i++) x[i] += 0.5; // a mean away from 0 for LayerNorm
    const weight = randomFloats(features, 2);
    const bias = randomFloats(features, 3);
    const out = createEmptyBuffer(device, x.byteLength);
    const eps = kind === 'rmsnorm' ? 1e-6 : 1e-5;
    const op = createNorm(
      ctx,
      { kind, tokens, features, eps },
      {
        x: createStorageBuffer(device, x),
        weight: createStorageBuffer(device, weight),
        bias: kind === 'layernorm' ? createStorageBuffer(device, bias) : undefined,
        out,
      },
    );
    submitOps(ctx, [op]);
    const expected = normReference({ kind, tokens, features, eps, x, weight, bias });
    expectClose(
      `${kind} ${tokens}x${features}`,
      await readFloat32(device, out, x.length),
      expected,
      1e-5,
    );
  });
});

const ropeConfig = (headDim: number, theta: number, llama3: boolean): ModelConfig =>
  ({
    architecture: 'LlamaForCausalLM',
    headDim,
    rope: llama3
      ? {
          type: 'llama3',
          theta,
          factor: 32,
          lowFreqFactor: 1,
          highFreqFactor: 4,
          originalMaxPositionEmbeddings: 8192,
        }
      : { type: 'default', theta },
  }) as ModelConfig;

describe('rope', () => {
  it.each([
    { tokens: 1, heads: 2, kvHeads: 1, headDim: 64, start: 1, fused: false, llama3: false },
    { tokens: 5, heads: 4, kvHeads: 2, headDim: 32, start: 17, fused: false, llama3: true },
    { tokens: 3, heads: 14, kvHeads: 2, headDim: 64, start: 100000, fused: true, llama3: false },
  ])(
    'T $tokens, heads $heads/$kvHeads, d $headDim from $start (fused $fused)',
    async ({ tokens, heads, kvHeads, headDim, start, fused, llama3 }) => {
      const { device } = ctx;
      const invFreq = computeRopeInvFreq(ropeConfig(headDim, llama3 ? 500000 : 10000, llama3));
      const q = randomFloats(tokens * heads * headDim, 3);
      const k = randomFloats(tokens * kvHeads * headDim, 4);
      const v = randomFloats(tokens * kvHeads * headDim, 5);
      const invFreqBuffer = createStorageBuffer(device, invFreq);
      const expectedQ = ropeReference(q, tokens, heads, headDim, invFreq, start);
      const expectedK = ropeReference(k, tokens, kvHeads, headDim, invFreq, start);
      let actualQ: Float32Array;
      let actualK: Float32Array;
      if (fused) {
        const row = (heads + 2 * kvHeads) * headDim;
        const qkv = new Float32Array(tokens * row);
        for (let t = 0; t < tokens; t++) {
          qkv.set(q.subarray(t * heads * headDim, (t + 1) * heads * headDim), t * row);
          const kvRow = kvHeads * headDim;
          qkv.set(k.subarray(t * kvRow, (t + 1) * kvRow), t * row + heads * headDim);
          qkv.set(v.subarray(t * kvRow, (t + 1) * kvRow), t * row + (heads + kvHeads) * headDim);
        }
        const buffer = createStorageBuffer(device, qkv);
        const startBuffer = createStorageBuffer(device, Uint32Array.of(start));
        const op = createRope(
          ctx,
          {
            tokens,
            numHeads: heads,
            numKvHeads: kvHeads,
            headDim,
            start: startBuffer,
            qStride: row,
            kStride: row,
            kOffset: heads * headDim,
          },
          { qkv: buffer, invFreq: invFreqBuffer },
        );
        submitOps(ctx, [op]);
        const out = await readFloat32(device, buffer, qkv.length);
        actualQ = new Float32Array(q.length);
        actualK = new Float32Array(k.length);
        for (let t = 0; t < tokens; t++) {
          actualQ.set(out.subarray(t * row, t * row + heads * headDim), t * heads * headDim);
          const kvRow = kvHeads * headDim;
          const kStart = t * row + heads * headDim;
          actualK.set(out.subarray(kStart, kStart + kvRow), t * kvRow);
          // V is untouched.
          expect(out.subarray(kStart + kvRow, kStart + 2 * kvRow)).toEqual(
            v.subarray(t * kvRow, (t + 1) * kvRow),
          );
        }
      } else {
        const qBuffer = createStorageBuffer(device, q);
        const kBuffer = createStorageBuffer(device, k);
        const op = createRope(
          ctx,
          { tokens, numHeads: heads, numKvHeads: kvHeads, headDim, start },
          { q: qBuffer, k: kBuffer, invFreq: invFreqBuffer },
        );
        submitOps(ctx, [op]);
        actualQ = await readFloat32(device, qBuffer, q.length);
        actualK = await readFloat32(device, kBuffer, k.length);
      }
      expectClose(`rope q T${tokens} start ${start}`, actualQ, expectedQ, 1e-5);
      expectClose(`rope k T${tokens} start ${start}`, actualK, expectedK, 1e-5);
    },
  );
});

describe('activations and residual add', () => {
  it.each([
    [1, 40, false],
    [6, 130, true],
  ])('SwiGLU over %i x %i (fused %s)', async (tokens, features, fused) => {
    const { device } = ctx;
    const gate = randomFloats(tokens * features, 8, 6);
    const up = randomFloats(tokens * features, 9, 2);
    const out = createEmptyBuffer(device, gate.byteLength);
    let op;
    if (fused) {
      const gateUp = new Float32Array(2 * gate.length);
      for (let t = 0; t < tokens; t++) {
        gateUp.set(gate.subarray(t * features, (t + 1) * features), 2 * t * features);
        gateUp.set(up.subarray(t * features, (t + 1) * features), (2 * t + 1) * features);
      }
      op = createSwiGlu(
        ctx,
        { tokens, features },
        { gateUp: createStorageBuffer(device, gateUp), out },
      );
    } else {
      op = createSwiGlu(
        ctx,
        { tokens, features },
        { gate: createStorageBuffer(device, gate), up: createStorageBuffer(device, up), out },
      );
    }
    submitOps(ctx, [op]);
    const actual = await readFloat32(device, out, gate.length);
    expectClose(`swiglu ${tokens}x${features}`, actual, swiGluReference(gate, up), 1e-6);
  });

  it.each(['gelu_tanh', 'gelu'] as const)('%s in place', async (kind) => {
    const x = randomFloats(1003, 12, 8);
    const buffer = createStorageBuffer(ctx.device, x);
    submitOps(ctx, [createGelu(ctx, { count: x.length, kind }, { x: buffer })]);
    const expected = Float64Array.from(x, (v) => activationReference(v, kind));
    expectClose(kind, await readFloat32(ctx.device, buffer, x.length), expected, 1e-6);
  });

  it('residual add', async () => {
    const a = randomFloats(4 * 900, 13);
    const b = randomFloats(4 * 900, 14);
    const buffer = createStorageBuffer(ctx.device, a);
    submitOps(ctx, [
      createResidualAdd(
        ctx,
        { count: a.length },
        { a: buffer, b: createStorageBuffer(ctx.device, b) },
      ),
    ]);
    const expected = Float64Array.from(a, (v, i) => v + b[i]);
    expectClose('residual add', await readFloat32(ctx.device, buffer, a.length), expected, 1e-7);
  });
});

describe('embedding', () => {
  it.each<[WeightDtype, boolean, number | undefined]>([
    ['f32', false, undefined],
    ['f16', false, 7],
    ['f32', true, 5],
    ['f16', true, undefined],
  ])('%s table, positions %s, %s rows per chunk', async (dtype, positions, chunkRows) => {
    const { device } = ctx;
    const vocab = 23;
    const features = 12;
    const maxPositions = 40;
    const start = 9;
    const ids = Uint32Array.of(22, 0, 7, 7, 15, 3);
    const table = randomFloats(vocab * features, 15);
    const posTable = randomFloats(maxPositions * features, 16);
    const pack = (v: Float32Array) => (dtype === 'f16' ? packFloat16Pairs(v) : v);
    const round = (v: Float32Array) => (dtype === 'f16' ? roundToFloat16(v) : v);
    const rowBytes = features * (dtype === 'f16' ? 2 : 4);
    const chunks = uploadWeightChunks(
      ctx,
      pack(table),
      vocab,
      features,
      dtype,
      chunkRows ? chunkRows * rowBytes : undefined,
    );
    const out = createEmptyBuffer(device, ids.length * features * 4);
    const op = createEmbedding(
      ctx,
      { tokens: ids.length, features, dtype, start },
      {
        ids: createStorageBuffer(device, ids),
        table: chunks,
        positions: positions ? createStorageBuffer(device, pack(posTable)) : undefined,
        out,
      },
    );
    submitOps(ctx, [op]);
    const expected = embeddingReference(
      ids,
      round(table),
      features,
      positions ? { table: round(posTable), start } : undefined,
    );
    const actual = await readFloat32(device, out, ids.length * features);
    expectClose(`embedding ${dtype} positions ${positions}`, actual, expected, 1e-7);
  });
});

describe('RoPE fused into the KV cache write', () => {
  it.each<{ dtype: KvDtype; start: number; tokens: number }>([
    { dtype: 'f32', start: 0, tokens: 13 },
    { dtype: 'f16', start: 21, tokens: 1 },
    { dtype: 'f16', start: 5, tokens: 20 },
  ])('$dtype, $tokens tokens from $start: as rope then kv write, bit for bit', async (c) => {
    const { device } = ctx;
    const kv = { pageSize: 8, numKvHeads: 2, headDim: 16, dtype: c.dtype };
    const numHeads = 4;
    const kvWidth = kv.numKvHeads * kv.headDim;
    const pageTable = shuffledPageTable(pagesFor(c.start + c.tokens, kv.pageSize), 3);
    const poolWords = packPagedPool(new Float32Array(0), 0, kv, pageTable).data.length;
    const q = randomFloats(c.tokens * numHeads * kv.headDim, 31);
    const kvRows = randomFloats(c.tokens * 2 * kvWidth, 32);
    const invFreq = computeRopeInvFreq({
      rope: { type: 'default', theta: 10000 },
      headDim: kv.headDim,
    } as ModelConfig);
    const run = async (fused: boolean) => {
      const buffers = {
        q: createStorageBuffer(device, q),
        kv: createStorageBuffer(device, kvRows),
        invFreq: createStorageBuffer(device, invFreq),
        pageTable: createStorageBuffer(device, pageTable),
        kPool: createEmptyBuffer(device, poolWords * 4),
        vPool: createEmptyBuffer(device, poolWords * 4),
      };
      const rows = { kStride: 2 * kvWidth, kOffset: 0, vStride: 2 * kvWidth, vOffset: kvWidth };
      const { pageTable: table, kPool, vPool } = buffers;
      const ops = fused
        ? [
            createKvWrite(
              ctx,
              { tokens: c.tokens, kv, start: c.start, ...rows, rope: { numHeads } },
              buffers,
            ),
          ]
        : [
            createRope(
              ctx,
              { tokens: c.tokens, numHeads, numKvHeads: kv.numKvHeads, headDim: kv.headDim, start: c.start, kStride: 2 * kvWidth }, // prettier-ignore
              { q: buffers.q, k: buffers.kv, invFreq: buffers.invFreq },
            ),
            createKvWrite(
              ctx,
              { tokens: c.tokens, kv, start: c.start, ...rows },
              { k: buffers.kv, v: buffers.kv, pageTable: table, kPool, vPool },
            ),
          ];
      submitOps(ctx, ops);
      const read = async (buffer: GPUBuffer, bytes: number) =>
        new Uint32Array(await readBuffer(device, buffer, bytes));
      return {
        q: await read(buffers.q, q.byteLength),
        kv: await read(buffers.kv, kvRows.byteLength),
        kPool: await read(kPool, poolWords * 4),
        vPool: await read(vPool, poolWords * 4),
      };
    };
    const separate = await run(false);
    const fused = await run(true);
    expect(fused.q).toEqual(separate.q);
    expect(fused.kv).toEqual(separate.kv);
    expect(fused.kPool).toEqual(separate.kPool);
    expect(fused.vPool).toEqual(separate.vPool);
    // The rotation did something, and the pools hold the new tokens.
    expect(separate.q).not.toEqual(new Uint32Array(q.buffer));
    expect(separate.kPool.some((word) => word !== 0)).toBe(true);
  });
});

describe('KV cache write', () => {
  it.each<{ dtype: KvDtype; fused: boolean; start: number; tokens: number }>([
    { dtype: 'f32', fused: false, start: 0, tokens: 13 },
    { dtype: 'f16', fused: false, start: 21, tokens: 1 },
    { dtype: 'f16', fused: true, start: 5, tokens: 20 },
  ])(
    '$dtype, fused $fused, $tokens tokens from $start',
    async ({ dtype, fused, start, tokens }) => {
      const { device } = ctx;
      const kv = { pageSize: 8, numKvHeads: 2, headDim: 16, dtype };
      const numHeads = 4;
      const total = start + tokens;
      const pageTable = shuffledPageTable(pagesFor(total, kv.pageSize), 3);
      const rowFloats = kv.numKvHeads * kv.headDim;
      const kAll = randomFloats(total * rowFloats, 17);
      const vAll = randomFloats(total * rowFloats, 18);
      // The pools already hold tokens 0 .. start - 1; the kernel appends the rest.
      const kPool = createStorageBuffer(device, packPagedPool(kAll, start, kv, pageTable).data);
      const vPool = createStorageBuffer(device, packPagedPool(vAll, start, kv, pageTable).data);
      const kNew = kAll.subarray(start * rowFloats);
      const vNew = vAll.subarray(start * rowFloats);
      const pageTableBuffer = createStorageBuffer(device, pageTable);
      let op;
      if (fused) {
        const row = (numHeads + 2 * kv.numKvHeads) * kv.headDim;
        const qkv = randomFloats(tokens * row, 19);
        for (let t = 0; t < tokens; t++) {
          qkv.set(
            kNew.subarray(t * rowFloats, (t + 1) * rowFloats),
            t * row + numHeads * kv.headDim,
          );
          qkv.set(vNew.subarray(t * rowFloats, (t + 1) * rowFloats), t * row + row - rowFloats);
        }
        const qkvBuffer = createStorageBuffer(device, qkv);
        op = createKvWrite(
          ctx,
          {
            tokens,
            kv,
            start,
            kStride: row,
            kOffset: numHeads * kv.headDim,
            vStride: row,
            vOffset: row - rowFloats,
          },
          { k: qkvBuffer, v: qkvBuffer, pageTable: pageTableBuffer, kPool, vPool },
        );
      } else {
        op = createKvWrite(
          ctx,
          { tokens, kv, start },
          {
            k: createStorageBuffer(device, kNew),
            v: createStorageBuffer(device, vNew),
            pageTable: pageTableBuffer,
            kPool,
            vPool,
          },
        );
      }
      submitOps(ctx, [op]);
      const expectedK = packPagedPool(kAll, total, kv, pageTable).data;
      const expectedV = packPagedPool(vAll, total, kv, pageTable).data;
      const bytes = expectedK.byteLength;
      expect(new Uint32Array(await readBuffer(device, kPool, bytes))).toEqual(
        new Uint32Array(expectedK.buffer),
      );
      expect(new Uint32Array(await readBuffer(device, vPool, bytes))).toEqual(
        new Uint32Array(expectedV.buffer),
      );
    },
  );
});
