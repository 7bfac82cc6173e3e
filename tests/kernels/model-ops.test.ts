import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEmptyBuffer,
  createStorageBuffer,
  readBuffer,
  readFloat32,
} from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { packFloat16Pairs, roundToFloat16 } from '../../src/gpu/f16';
import { wordsPerPage, type KvDtype } from '../../src/kernels/layout';
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
import { ropeReference } from '../../src/kernels/model/rope';
import { packPagedPool, pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import { computeRopeInvFreq, type ModelConfig } from '../../src/model/loading/config';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

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

describe('RoPE, applied by the KV cache write', () => {
  it.each<{
    tokens: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    start: number;
    llama3: boolean;
    dtype: KvDtype;
  }>([
    { tokens: 1, heads: 2, kvHeads: 1, headDim: 64, start: 1, llama3: false, dtype: 'f32' },
    { tokens: 5, heads: 4, kvHeads: 2, headDim: 32, start: 17, llama3: true, dtype: 'f16' },
    { tokens: 3, heads: 14, kvHeads: 2, headDim: 64, start: 100000, llama3: false, dtype: 'f32' },
    { tokens: 20, heads: 4, kvHeads: 2, headDim: 16, start: 5, llama3: false, dtype: 'f16' },
  ])(
    'T $tokens, heads $heads/$kvHeads, d $headDim from $start, $dtype pools',
    async ({ tokens, heads, kvHeads, headDim, start, llama3, dtype }) => {
      const { device } = ctx;
      const kv = { pageSize: 8, numKvHeads: kvHeads, headDim, dtype };
      const kvWidth = kvHeads * headDim;
      const invFreq = computeRopeInvFreq(ropeConfig(headDim, llama3 ? 500000 : 10000, llama3));
      const q = randomFloats(tokens * heads * headDim, 3);
      // Rows of k then v per token, as the fused qkv projection lays them out.
      const kvRows = randomFloats(tokens * 2 * kvWidth, 4);
      const k = new Float32Array(tokens * kvWidth);
      for (let t = 0; t < tokens; t++) {
        k.set(kvRows.subarray(2 * t * kvWidth, (2 * t + 1) * kvWidth), t * kvWidth);
      }
      const pageTable = shuffledPageTable(pagesFor(start + tokens, kv.pageSize), 3);
      const poolWords = packPagedPool(new Float32Array(0), 0, kv, pageTable).data.length;
      const buffers = {
        q: createStorageBuffer(device, q),
        kv: createStorageBuffer(device, kvRows),
        invFreq: createStorageBuffer(device, invFreq),
        pageTable: createStorageBuffer(device, pageTable),
        kPool: createEmptyBuffer(device, poolWords * 4),
        vPool: createEmptyBuffer(device, poolWords * 4),
      };
      const op = createKvWrite(
        ctx,
        {
          tokens,
          kv,
          start,
          kStride: 2 * kvWidth,
          kOffset: 0,
          vStride: 2 * kvWidth,
          vOffset: kvWidth,
          rope: { numHeads: heads },
        },
        buffers,
      );
      submitOps(ctx, [op]);
      const rotatedQ = await readFloat32(device, buffers.q, q.length);
      const rows = await readFloat32(device, buffers.kv, kvRows.length);
      const rotatedK = new Float32Array(tokens * kvWidth);
      for (let t = 0; t < tokens; t++) {
        rotatedK.set(rows.subarray(2 * t * kvWidth, (2 * t + 1) * kvWidth), t * kvWidth);
        // V is untouched.
        expect(rows.subarray((2 * t + 1) * kvWidth, (2 * t + 2) * kvWidth)).toEqual(
          kvRows.subarray((2 * t + 1) * kvWidth, (2 * t + 2) * kvWidth),
        );
      }
      const name = `T${tokens} start ${start}`;
      expectClose(`rope q ${name}`, rotatedQ, ropeReference(q, tokens, heads, headDim, invFreq, start), 1e-5); // prettier-ignore
      expectClose(`rope k ${name}`, rotatedK, ropeReference(k, tokens, kvHeads, headDim, invFreq, start), 1e-5); // prettier-ignore
      // The pages of the new tokens hold exactly the rotated k it left in place, and v (their
      // earlier slots were never written: zeros in both). Whole-pool comparisons would be slow at
      // start 100000.
      const pageWords = wordsPerPage(kv);
      const pages = [
        ...new Set(
          Array.from(
            { length: tokens },
            (_, t) => pageTable[Math.floor((start + t) / kv.pageSize)],
          ),
        ),
      ];
      const written = async (buffer: GPUBuffer) => {
        const words = new Uint32Array(await readBuffer(device, buffer, poolWords * 4));
        return pages.map((page) => [...words.subarray(page * pageWords, (page + 1) * pageWords)]);
      };
      const expectedPages = (tokenRows: Float32Array) => {
        const all = new Float32Array((start + tokens) * kvWidth);
        all.set(tokenRows, start * kvWidth);
        const packed = packPagedPool(all, start + tokens, kv, pageTable).data;
        const words = new Uint32Array(packed.buffer, packed.byteOffset, packed.length);
        return pages.map((page) => [...words.subarray(page * pageWords, (page + 1) * pageWords)]);
      };
      const v = new Float32Array(tokens * kvWidth);
      for (let t = 0; t < tokens; t++) {
        v.set(kvRows.subarray((2 * t + 1) * kvWidth, (2 * t + 2) * kvWidth), t * kvWidth);
      }
      expect(await written(buffers.kPool)).toEqual(expectedPages(rotatedK));
      expect(await written(buffers.vPool)).toEqual(expectedPages(v));
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
