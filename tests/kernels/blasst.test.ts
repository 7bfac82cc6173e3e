import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { roundToFloat16 } from '../../src/gpu/f16';
import {
  blasstDecodeOnHost,
  blasstDecodePlan,
  defaultBlasstBlocksPerSplit,
  blasstPrefillOnHost,
  blasstPrefillTileConfig,
  type BlasstHostResult,
} from '../../src/kernels/blasst';
import { denseDecodeOnHost, type HostDecodeInput } from '../../src/kernels/denseDecode';
import {
  densePrefillOnHost,
  prefillTileConfig,
  type HostPrefillInput,
  type PrefillTileConfig,
} from '../../src/kernels/densePrefill';
import { defaultScale } from '../../src/kernels/layout';
import { pagesFor, shuffledPageTable } from '../../src/kernels/pagedKv';
import {
  blasst,
  blasstDecode,
  visitOrder,
  type BlasstOrder,
} from '../../src/methods/reference/blasst';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
let config: PrefillTileConfig;
beforeAll(async () => {
  ctx = await sharedGpuContext();
  // 64 invocations: smaller query tiles, so a few hundred queries make several of them.
  // Key tiles of 32 keys (the planted case is laid out on them) when the chunk divides 32.
  const base = prefillTileConfig(ctx, headDim);
  const keyTile = 32 % base.keyChunk === 0 ? 32 : base.keyTile;
  config = {
    ...base,
    threads: 64,
    queryTile: (64 / base.lanesPerRow) * base.rowsPerThread,
    keyTile,
    workgroupBytes: keyTile * 2 * headDim * 4,
  };
});

const headDim = 32;
const pageSize = 16;
const kv = (numKvHeads: number) => ({ pageSize, numKvHeads, headDim, dtype: 'f32' as const });

/** Adds `weight` times the ramp / plant direction (dimension 0) to every key or query row. */
function plant(x: Float32Array, rows: number, rowWeight: (row: number) => number) {
  for (let r = 0; r < rows; r++) x[r * headDim] += rowWeight(r);
}

function prefillInput(seed: number, planted: boolean): HostPrefillInput {
  const numQueries = 200;
  // Planted: the queries start on a key block boundary, after the low blocks (1, 2 with 64-key
  // tiles; 2 to 5 with 32), so that every row of a query tile sees its diagonal block.
  const qStart = planted ? 192 : 60;
  const numHeads = 4;
  const numKvHeads = 2;
  const kvLen = qStart + numQueries;
  const noise = planted ? 1 : 2;
  const q = randomFloats(numQueries * numHeads * headDim, seed, noise);
  const k = randomFloats(kvLen * numKvHeads * headDim, seed + 1, noise);
  if (planted) {
    // Every query points along dimension 0; keys rise with their position along it, and keys
    // 64 .. 191 point away: low-score blocks, and late blocks that raise the running max.
    plant(q, numQueries * numHeads, () => 4);
    plant(k, kvLen * numKvHeads, (row) => {
      const t = Math.floor(row / numKvHeads);
      return t >= 64 && t < 192 ? -8 : (12 * t) / kvLen;
    });
  }
  return {
    numQueries,
    qStart,
    numHeads,
    numKvHeads,
    headDim,
    scale: defaultScale(headDim),
    kv: kv(numKvHeads),
    q,
    k,
    v: randomFloats(kvLen * numKvHeads * headDim, seed + 2),
    pageTable: shuffledPageTable(pagesFor(kvLen, pageSize), seed),
  };
}

/** The reference's kept blocks per (head, query block), in the kernel's counts order. */
function keptPerTile(mask: { rowStart: Uint32Array }): number[] {
  return Array.from({ length: mask.rowStart.length - 1 }, (_, i) => {
    return mask.rowStart[i + 1] - mask.rowStart[i];
  });
}

function perHead(counts: Uint32Array, heads: number): number[] {
  const perHeadTiles = counts.length / heads;
  return Array.from({ length: heads }, (_, h) =>
    counts.slice(h * perHeadTiles, (h + 1) * perHeadTiles).reduce((a, b) => a + b, 0),
  );
}

async function checkPrefill(
  input: HostPrefillInput,
  lambda: number,
  order: BlasstOrder,
  tiles: PrefillTileConfig = config,
) {
  const gpu = await blasstPrefillOnHost(ctx, input, { lambda, order }, tiles);
  const ref = blasst(asReferenceInput(input), {
    blockQ: tiles.queryTile,
    blockK: tiles.keyTile,
    lambda,
    order,
  });
  expect(perHead(gpu.skipped, input.numHeads)).toEqual(Array.from(ref.skipped));
  expect(perHead(gpu.kept, input.numHeads)).toEqual(Array.from(ref.kept));
  expect(Array.from(gpu.kept)).toEqual(keptPerTile(ref.mask));
  const { error, magnitude } = maxAbsError(gpu.out, ref.out);
  expect(magnitude).toBeGreaterThan(0);
  expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
  return gpu;
}

/** f16 KV: the reference reads the same rounded K and V as the kernel. */
function asReferenceInput<T extends { k: Float32Array; v: Float32Array; kv: { dtype: string } }>(
  input: T,
): T {
  if (input.kv.dtype !== 'f16') return input;
  return { ...input, k: roundToFloat16(input.k), v: roundToFloat16(input.v) };
}

const withoutSubgroups = (c: GpuContext): GpuContext => ({
  ...c,
  caps: { ...c.caps, subgroups: false },
});

const total = (counts: Uint32Array) => counts.reduce((a, b) => a + b, 0);

describe('BLASST prefill', () => {
  it('tiles leave room for the vote where the dense K/V tile fills workgroup memory', () => {
    const withStorage = (bytes: number): GpuContext => ({
      ...ctx,
      caps: { ...ctx.caps, maxWorkgroupStorageBytes: bytes },
    });
    // d 128: 32 keys of K and V are 32 KiB, the whole of a 32 KiB device.
    const dense = prefillTileConfig(withStorage(32768), 128);
    const tight = blasstPrefillTileConfig(withStorage(32768), 128);
    expect(dense.workgroupBytes).toBe(32768);
    expect(tight.keyTile).toBe(dense.keyTile - dense.keyChunk);
    expect(tight.workgroupBytes).toBe(tight.keyTile * 1024);
    expect(tight.queryTile).toBe(dense.queryTile);
    expect(blasstPrefillTileConfig(withStorage(49152), 128)).toEqual(
      prefillTileConfig(withStorage(49152), 128),
    );
    expect(() => blasstPrefillTileConfig(withStorage(4096), 128)).toThrow(/too little/);
  });

  it('with lambda 0 skips nothing and equals dense prefill bit for bit', async () => {
    const input = prefillInput(1, false);
    const dense = await densePrefillOnHost(ctx, input, config);
    const gpu = await checkPrefill(input, 0, 'natural');
    expect(total(gpu.skipped)).toBe(0);
    expect(Array.from(gpu.out)).toEqual(Array.from(dense));
  });

  it('matches the reference counts and output on seeded data', async () => {
    const gpu = await checkPrefill(prefillInput(2, false), 0.5, 'natural');
    expect(total(gpu.skipped)).toBeGreaterThan(0);
    console.log(
      `BLASST prefill seeded, lambda 0.5: skipped ${total(gpu.skipped)} kept ${total(gpu.kept)}`,
    );
  });

  it('matches the reference on planted low-score blocks, both visit orders', async () => {
    const input = prefillInput(3, true);
    const natural = await checkPrefill(input, 0.2, 'natural');
    const recentFirst = await checkPrefill(input, 0.2, 'sink-recent-first');
    console.log(
      `BLASST prefill planted, lambda 0.2: natural skipped ${total(natural.skipped)} kept ${total(natural.kept)}; sink-recent-first skipped ${total(recentFirst.skipped)} kept ${total(recentFirst.kept)}`,
    );
    expect(total(natural.skipped)).toBeGreaterThan(0);
    expect(total(recentFirst.skipped)).toBeGreaterThan(total(natural.skipped));
  });

  it('f16 KV: matches the reference on the rounded K and V (planted, recent first)', async () => {
    const input = prefillInput(4, true);
    const gpu = await checkPrefill({ ...input, kv: { ...input.kv, dtype: 'f16' } }, 0.2, 'sink-recent-first'); // prettier-ignore
    expect(total(gpu.skipped)).toBeGreaterThan(0);
  });

  it('without subgroups (one invocation per row)', async () => {
    const base = prefillTileConfig(withoutSubgroups(ctx), headDim);
    const tiles = { ...base, threads: 64, queryTile: 64 * base.rowsPerThread };
    const gpu = await checkPrefill(prefillInput(5, true), 0.2, 'sink-recent-first', tiles);
    expect(total(gpu.skipped)).toBeGreaterThan(0);
  });
});

/**
 * The reference run with the kernel's group rule: the G query heads of a KV head become the G rows
 * of one row group (blockQ = G) of a single-head problem. Rows sit at consecutive positions, so G-1
 * padding keys follow the cache; an extra dimension (1 in q, -1e6 / scale in the padding keys, 0
 * elsewhere) gives them a weight of exactly 0. They must share the cache's last block.
 */
function groupedDecodeReference(
  input: HostDecodeInput,
  blockK: number,
  lambda: number,
  order: BlasstOrder,
) {
  const { numHeads, numKvHeads: kvHeads, kvLen, scale } = input;
  const g = numHeads / kvHeads;
  const d1 = headDim + 1;
  if (((kvLen - 1) % blockK) + g - 1 >= blockK) throw new Error('padding crosses a block');
  const keys = kvLen + g - 1;
  const q = new Float64Array(g * kvHeads * d1);
  const k = new Float64Array(keys * kvHeads * d1);
  const v = new Float64Array(keys * kvHeads * d1);
  for (let kh = 0; kh < kvHeads; kh++) {
    for (let i = 0; i < g; i++) {
      const row = (i * kvHeads + kh) * d1;
      for (let d = 0; d < headDim; d++) q[row + d] = input.q[(kh * g + i) * headDim + d];
      q[row + headDim] = 1;
    }
    for (let t = 0; t < keys; t++) {
      const row = (t * kvHeads + kh) * d1;
      if (t >= kvLen) {
        k[row + headDim] = -1e6 / scale;
        continue;
      }
      for (let d = 0; d < headDim; d++) {
        k[row + d] = input.k[(t * kvHeads + kh) * headDim + d];
        v[row + d] = input.v[(t * kvHeads + kh) * headDim + d];
      }
    }
  }
  const ref = blasst(
    { q, k, v, numQueries: g, qStart: kvLen - 1, numHeads: kvHeads, numKvHeads: kvHeads, headDim: d1, scale }, // prettier-ignore
    { blockQ: g, blockK, lambda, order },
  );
  const out = new Float64Array(numHeads * headDim);
  for (let kh = 0; kh < kvHeads; kh++) {
    for (let i = 0; i < g; i++) {
      for (let d = 0; d < headDim; d++) {
        out[(kh * g + i) * headDim + d] = ref.out[(i * kvHeads + kh) * d1 + d];
      }
    }
  }
  return { out, skipped: Array.from(ref.skipped), kept: Array.from(ref.kept) };
}

function decodeInput(
  numHeads: number,
  numKvHeads: number,
  kvLen: number,
  seed: number,
  planted: boolean,
): HostDecodeInput {
  const noise = planted ? 1 : 2;
  const q = randomFloats(numHeads * headDim, seed, noise);
  const k = randomFloats(kvLen * numKvHeads * headDim, seed + 1, noise);
  if (planted) {
    // Only the most recent block scores high: visited first, it lets every other block go.
    plant(q, numHeads, () => 4);
    plant(k, kvLen * numKvHeads, (row) => (Math.floor(row / numKvHeads) >= kvLen - 40 ? 6 : 0));
  }
  return {
    numHeads,
    numKvHeads,
    headDim,
    kvLen,
    scale: defaultScale(headDim),
    kv: kv(numKvHeads),
    q,
    k,
    v: randomFloats(kvLen * numKvHeads * headDim, seed + 2),
    pageTable: shuffledPageTable(pagesFor(kvLen, pageSize), seed),
  };
}

const decodeBlock = 64;

/**
 * Split-K BLASST decode in float64, written from the kernel's contract: per KV head, splits of
 * `blocksPerSplit` blocks, each its own BLASST walk with its own running max per query head, a
 * block skipped when every head of the group votes skip, merged by log-sum-exp. A split visits the
 * cache's anchor blocks first (the head of the order's sequential walk: block 0, or the last block
 * then block 0), then its own other blocks ascending; an anchor it does not own only raises the
 * running max of the skip test (it is not summed or counted). With one split it must equal
 * groupedDecodeReference (checked below).
 */
function splitDecodeReference(
  input: HostDecodeInput,
  blockK: number,
  blocksPerSplit: number,
  lambda: number,
  order: BlasstOrder,
) {
  const { numHeads, numKvHeads, kvLen, scale } = input;
  const g = numHeads / numKvHeads;
  const numBlocks = Math.ceil(kvLen / blockK);
  const splitBlocks = Math.min(numBlocks, blocksPerSplit);
  const anchors = visitOrder(numBlocks, order).slice(0, order === 'natural' ? 1 : 2);
  const out = new Float64Array(numHeads * headDim);
  const skipped: number[] = [];
  const kept: number[] = [];
  for (let kh = 0; kh < numKvHeads; kh++) {
    let skippedHere = 0;
    let keptHere = 0;
    // Per query head of the group: the merged (max, sum, acc) over the splits.
    const total = Array.from({ length: g }, () => ({
      m: -Infinity,
      l: 0,
      acc: new Float64Array(headDim),
    }));
    for (let first = 0; first < numBlocks; first += splitBlocks) {
      const blocks = Math.min(splitBlocks, numBlocks - first);
      const split = total.map(() => ({ m: -Infinity, l: 0, acc: new Float64Array(headDim) }));
      // The skip test's running max: over every visited block (a skipped one is below it).
      const seen = split.map(() => -Infinity);
      const owned = (b: number) => first <= b && b < first + blocks;
      const own = Array.from({ length: blocks }, (_, i) => first + i);
      for (const block of [...anchors, ...own.filter((b) => !anchors.includes(b))]) {
        const t0 = block * blockK;
        const t1 = Math.min(t0 + blockK, kvLen);
        const scores = split.map((_, i) =>
          Array.from({ length: t1 - t0 }, (_, c) => {
            let dot = 0;
            for (let d = 0; d < headDim; d++) {
              dot +=
                input.q[(kh * g + i) * headDim + d] *
                input.k[((t0 + c) * numKvHeads + kh) * headDim + d];
            }
            return dot * scale;
          }),
        );
        const blockMax = scores.map((row) => Math.max(...row));
        const skip = seen.every((m, i) => m !== -Infinity && Math.exp(blockMax[i] - m) < lambda);
        if (owned(block) && skip) {
          skippedHere++;
          continue;
        }
        blockMax.forEach((x, i) => (seen[i] = Math.max(seen[i], x)));
        if (!owned(block)) continue;
        keptHere++;
        split.forEach((row, i) => {
          const mNew = Math.max(row.m, blockMax[i]);
          const correction = Math.exp(row.m - mNew);
          row.l *= correction;
          for (let d = 0; d < headDim; d++) row.acc[d] *= correction;
          scores[i].forEach((score, c) => {
            const p = Math.exp(score - mNew);
            row.l += p;
            for (let d = 0; d < headDim; d++) {
              row.acc[d] += p * input.v[((t0 + c) * numKvHeads + kh) * headDim + d];
            }
          });
          row.m = mNew;
        });
      }
      split.forEach((part, i) => {
        // A split whose own blocks were all skipped adds nothing.
        if (part.m === -Infinity) return;
        const merged = total[i];
        const mNew = Math.max(merged.m, part.m);
        const a = Math.exp(merged.m - mNew);
        const b = Math.exp(part.m - mNew);
        merged.l = merged.l * a + part.l * b;
        for (let d = 0; d < headDim; d++) merged.acc[d] = merged.acc[d] * a + part.acc[d] * b;
        merged.m = mNew;
      });
    }
    total.forEach((row, i) => {
      for (let d = 0; d < headDim; d++) out[(kh * g + i) * headDim + d] = row.acc[d] / row.l;
    });
    skipped.push(skippedHere);
    kept.push(keptHere);
  }
  return { out, skipped, kept };
}

/** GQA 4 over 330 tokens where the first 64-token block of every 128 tokens scores high. */
function plantedPerSplit(seed: number): HostDecodeInput {
  const input = decodeInput(8, 2, 330, seed, false);
  plant(input.q, input.numHeads, () => 4);
  plant(input.k, input.kvLen * input.numKvHeads, (row) =>
    Math.floor(row / input.numKvHeads) % 128 < 64 ? 6 : 0,
  );
  return input;
}

async function checkDecode(
  input: HostDecodeInput,
  lambda: number,
  order: BlasstOrder,
  on: GpuContext = ctx,
  blocksPerSplit = Infinity,
): Promise<BlasstHostResult> {
  const options = { lambda, order, blockTokens: decodeBlock, blocksPerSplit };
  const gpu = await blasstDecodeOnHost(on, input, options);
  const rounded = asReferenceInput(input);
  const ref =
    blocksPerSplit === Infinity
      ? groupedDecodeReference(rounded, decodeBlock, lambda, order)
      : splitDecodeReference(rounded, decodeBlock, blocksPerSplit, lambda, order);
  expect(Array.from(gpu.skipped)).toEqual(ref.skipped);
  expect(Array.from(gpu.kept)).toEqual(ref.kept);
  const { error, magnitude } = maxAbsError(gpu.out, ref.out);
  expect(magnitude).toBeGreaterThan(0);
  expect(error).toBeLessThanOrEqual(1e-4 * magnitude);
  return gpu;
}

describe('BLASST decode', () => {
  it('splits the cache into whole blocks, one block per step', () => {
    const input = decodeInput(8, 2, 330, 1, false);
    const one = blasstDecodePlan(ctx, input, decodeBlock, Infinity);
    expect(one.numSplits).toBe(1);
    expect(one.rows * one.unroll).toBe(decodeBlock);
    expect(one.tokensPerSplit).toBe(6 * decodeBlock);
    const split = blasstDecodePlan(ctx, input, decodeBlock, 4);
    expect([split.numSplits, split.tokensPerSplit, split.workgroups]).toEqual([2, 256, 4]);
    // Not asked: 8 blocks a split, or 4 where 8 would leave fewer than 256 workgroups.
    expect(defaultBlasstBlocksPerSplit(128, 8)).toBe(4);
    expect(defaultBlasstBlocksPerSplit(256, 8)).toBe(8);
    expect(defaultBlasstBlocksPerSplit(512, 8)).toBe(8);
    expect(blasstDecodePlan(ctx, input, decodeBlock).tokensPerSplit).toBe(4 * decodeBlock);
    expect(
      blasstDecodePlan(ctx, { ...input, kvLen: 2048 * decodeBlock }, decodeBlock).tokensPerSplit,
    ).toBe(8 * decodeBlock);
    expect(() => blasstDecodePlan(ctx, input, decodeBlock, 0)).toThrow(/blocksPerSplit/);
    expect(() => blasstDecodePlan(ctx, input, 60)).toThrow(/multiple/);
  });

  it('the split reference with one split is the grouped method reference', () => {
    const input = decodeInput(8, 2, 330, 10, true);
    const one = splitDecodeReference(input, decodeBlock, Infinity, 0.05, 'sink-recent-first');
    const grouped = groupedDecodeReference(input, decodeBlock, 0.05, 'sink-recent-first');
    expect(one.skipped).toEqual(grouped.skipped);
    expect(one.kept).toEqual(grouped.kept);
    expect(maxAbsError(one.out, grouped.out).error).toBeLessThan(1e-12);
    expect(one.skipped.reduce((a, b) => a + b)).toBeGreaterThan(0);
  });

  it('split-K (3 splits of 2 blocks): matches the split reference, both orders', async () => {
    // The first block of every split scores high: natural order keeps it and skips the second.
    const input = plantedPerSplit(11);
    const natural = await checkDecode(input, 0.05, 'natural', ctx, 2);
    const recentFirst = await checkDecode(input, 0.05, 'sink-recent-first', ctx, 2);
    console.log(
      `BLASST decode split-K planted, lambda 0.05: natural skipped ${Array.from(natural.skipped)} kept ${Array.from(natural.kept)}; sink-recent-first skipped ${Array.from(recentFirst.skipped)} kept ${Array.from(recentFirst.kept)}`,
    );
    // At least the second block of the splits [0, 128) and [128, 256), per KV head.
    for (const skipped of natural.skipped) expect(skipped).toBeGreaterThanOrEqual(2);
    expect(total(recentFirst.skipped)).toBeLessThan(total(natural.skipped));
  });

  it('split-K: the anchors let every split skip its own first block', async () => {
    // Only the most recent 40 tokens score high: visited first by every split, the last block lets
    // the low blocks 0..3 of the first two splits go, their first blocks included (without anchors
    // each split keeps its first visited block: at most 2 skipped).
    const input = decodeInput(8, 2, 330, 14, true);
    const gpu = await checkDecode(input, 0.05, 'sink-recent-first', ctx, 2);
    for (const skipped of gpu.skipped) expect(skipped).toBeGreaterThanOrEqual(3);
  });

  it('split-K, seeded data, f16 KV and without subgroups', async () => {
    await checkDecode(decodeInput(8, 2, 330, 12, false), 0.9, 'natural', ctx, 2);
    const input = plantedPerSplit(13);
    const f16 = await checkDecode({ ...input, kv: { ...input.kv, dtype: 'f16' } }, 0.05, 'natural', ctx, 2); // prettier-ignore
    expect(total(f16.skipped)).toBeGreaterThan(0);
    const noSubgroups = await checkDecode(input, 0.05, 'natural', withoutSubgroups(ctx), 2);
    expect(total(noSubgroups.skipped)).toBeGreaterThan(0);
  });

  it('with lambda 0 skips nothing and matches dense decode', async () => {
    const input = decodeInput(8, 2, 330, 4, false);
    const gpu = await checkDecode(input, 0, 'natural');
    expect(total(gpu.skipped)).toBe(0);
    const dense = await denseDecodeOnHost(ctx, input);
    const { error, magnitude } = maxAbsError(gpu.out, dense);
    expect(error).toBeLessThanOrEqual(1e-5 * magnitude);
  });

  it('group size 1: equals the per-query-head reference (blasstDecode)', async () => {
    const input = decodeInput(2, 2, 300, 5, false);
    const lambda = 0.5;
    const gpu = await checkDecode(input, lambda, 'natural');
    const ref = blasstDecode(
      { ...input, numQueries: 1, qStart: input.kvLen - 1 },
      { blockK: decodeBlock, lambda, order: 'natural' },
    );
    expect(Array.from(gpu.skipped)).toEqual(Array.from(ref.skipped));
    expect(total(gpu.skipped)).toBeGreaterThan(0);
  });

  it('GQA 4: matches the reference under the group rule, planted, both orders', async () => {
    const input = decodeInput(8, 2, 330, 6, true);
    const natural = await checkDecode(input, 0.05, 'natural');
    const recentFirst = await checkDecode(input, 0.05, 'sink-recent-first');
    console.log(
      `BLASST decode planted, lambda 0.05: natural skipped ${Array.from(natural.skipped)} kept ${Array.from(natural.kept)}; sink-recent-first skipped ${Array.from(recentFirst.skipped)} kept ${Array.from(recentFirst.kept)}`,
    );
    expect(total(recentFirst.skipped)).toBeGreaterThan(total(natural.skipped));
  });

  it('GQA 4: matches the reference on seeded data', async () => {
    const gpu = await checkDecode(decodeInput(8, 2, 330, 7, false), 0.5, 'sink-recent-first');
    console.log(
      `BLASST decode seeded, lambda 0.5: skipped ${Array.from(gpu.skipped)} kept ${Array.from(gpu.kept)}`,
    );
  });

  it('GQA 4, f16 KV: matches the reference on the rounded K and V', async () => {
    const input = decodeInput(8, 2, 330, 8, true);
    const gpu = await checkDecode({ ...input, kv: { ...input.kv, dtype: 'f16' } }, 0.05, 'sink-recent-first'); // prettier-ignore
    expect(total(gpu.skipped)).toBeGreaterThan(0);
  });

  it('without subgroups (workgroup-memory row sums)', async () => {
    const input = decodeInput(8, 2, 330, 9, true);
    const gpu = await checkDecode(input, 0.05, 'sink-recent-first', withoutSubgroups(ctx));
    expect(total(gpu.skipped)).toBeGreaterThan(0);
  });
});
