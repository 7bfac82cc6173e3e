import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEmptyBuffer, createStorageBuffer, readFloat32 } from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { blasstPrefillTileConfig } from '../../src/kernels/blasst';
import { defaultScale, type PagedKvLayout } from '../../src/kernels/layout';
import { packPagedPool, pagesFor } from '../../src/kernels/pagedKv';
import type { AttentionCall, AttentionCount, LayerCache } from '../../src/methods/inModel';
import { blasst, type BlasstOrder } from '../../src/methods/reference/blasst';
import { getMethod, METHODS } from '../../src/methods/registry';
import {
  blockUnits,
  numberParam,
  resolveParams,
  stringParam,
  type MethodGpuInput,
  type MethodParams,
  type MethodShape,
  type Phase,
  type SparseMethod,
  type UnitCounts,
} from '../../src/methods/types';
import { loadModelFolder, type ModelFolder } from '../../src/model/load';
import {
  createLayerState,
  decodeAttention,
  prefillAttention,
  resolveMethod,
  type AttentionOptions,
} from '../../src/model/runtime/attention';
import { createModel, type AttentionStats } from '../../src/model/runtime/model';
import { maxAbsError, randomFloats } from '../support/random';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
let folder: ModelFolder;
beforeAll(async () => {
  ctx = await sharedGpuContext();
  folder = await loadModelFolder(join(import.meta.dirname, '../fixtures/models/llama_gqa_tied'));
});

/** Every (method, phase) pair of the registry. */
const cases = METHODS.flatMap((m) => m.phases.map((phase) => [m.name, phase, m] as const));

// ---------------------------------------------------------------------------------------------
// The in-model hooks on random q/k/v against the methods' CPU references.

const heads = { numHeads: 4, numKvHeads: 2, headDim: 32 };
const shapes: Record<Phase, MethodShape> = {
  // A chunk after a first one of 64 tokens: 2 query blocks of 64, 8 of 16.
  prefill: { ...heads, numQueries: 128, qStart: 64 },
  decode: { ...heads, numQueries: 1, qStart: 236 },
};
/** SnapKV's observation: the last prefill chunk, whose keys are the cache before the decode. */
const observation = { numQueries: 36, qStart: 200 };

/** Params that drop something on these small shapes (Vertical-Slash: 64-token blocks on the GPU). */
const SPARSE_PARAMS: Record<string, Partial<MethodParams>> = {
  dense: {},
  vertical_slash: { verticalSize: 6, lastQ: 32, sinkColumns: 2, localDiagonals: 4, block: 64 },
  flexprefill: {
    alpha: 0.2,
    minBudget: 4,
    approximationSize: 32,
    sinkColumns: 2,
    localDiagonals: 4,
    block: 64,
  },
  block_sparse: { topChunks: 3, chunkSize: 16 },
  blasst: { lambda: 0.05, order: 'natural', block: 16 },
  sliding_window: { window: 20, sinks: 2, block: 16 },
  quest: { tokenBudget: 48 },
  snapkv: { capacity: 40, window: 8, poolKernel: 7, localWindow: 16, prefixTokens: 4 },
  ada_snapkv: { capacity: 40, window: 8, poolKernel: 7, localWindow: 16, prefixTokens: 4 },
  user_pattern: {
    source: '(b, h, q, kv) => (q - kv < 24 && (q + kv + h) % 3 !== 1) || kv < 2',
    block: 16,
  },
};

/**
 * BLASST's input: keys first .. end - 1 (32 .. 63 by default) point away from every query
 * (dimension 0), so their key blocks score low for every row and are skipped once the running max
 * has seen the first keys.
 */
function awayKeys(input: MethodGpuInput, first = 32, end = 64): MethodGpuInput {
  const { numHeads, numKvHeads, headDim } = input;
  for (let r = 0; r < input.numQueries * numHeads; r++) input.q[r * headDim] += 4;
  // The same scaled score at every head dim (scale 1 / sqrt(headDim)).
  const away = -8 * Math.sqrt(headDim / 32);
  for (let t = first; t < end; t++) {
    for (let g = 0; g < numKvHeads; g++) input.k[(t * numKvHeads + g) * headDim] = away;
  }
  return input;
}

function inputFor(shape: MethodShape, seed: number, qAmplitude: number): MethodGpuInput {
  const keys = shape.qStart + shape.numQueries;
  const width = shape.numKvHeads * shape.headDim;
  const scale = defaultScale(shape.headDim);
  const k = randomFloats(keys * width, seed + 1, 2);
  const v = randomFloats(keys * width, seed + 2);
  const input: MethodGpuInput = {
    ...shape,
    scale,
    q: randomFloats(shape.numQueries * shape.numHeads * shape.headDim, seed, qAmplitude),
    k,
    v,
  };
  if (shape.numQueries === 1) {
    const promptKeys = observation.qStart + observation.numQueries;
    input.observation = {
      ...heads,
      ...observation,
      scale,
      q: randomFloats(observation.numQueries * shape.numHeads * shape.headDim, seed + 3, 2),
      k: k.subarray(0, promptKeys * width),
      v: v.subarray(0, promptKeys * width),
    };
  }
  return input;
}

/** The reference counted in the kernel's units; BLASST prefill's blocks are the kernel's tiles. */
function referenceFor(m: SparseMethod, input: MethodGpuInput, params: Partial<MethodParams>) {
  const reference = m.reference(input, params);
  if (m.name !== 'blasst' || input.numQueries === 1) return reference;
  const resolved = resolveParams(m.params, params);
  const tiles = blasstPrefillTileConfig(ctx, input.headDim);
  const result = blasst(input, {
    lambda: numberParam(resolved, 'lambda'),
    order: stringParam(resolved, 'order') as BlasstOrder,
    blockQ: tiles.queryTile,
    blockK: tiles.keyTile,
  });
  return { ...reference, output: result.out, units: blockUnits(result.mask) };
}

const UNIT_NAMES: Record<AttentionCount['unit'], UnitCounts['unit']> = {
  blocks: 'block',
  pages: 'page',
  tokens: 'token',
};

function submit(record: (pass: GPUComputePassEncoder) => void): void {
  const encoder = ctx.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass);
  pass.end();
  ctx.device.queue.submit([encoder.finish()]);
}

/**
 * Runs the method's in-model hook the way the model does: its layer state (Quest's summaries
 * updated after the KV write; SnapKV's selection after the prompt's prefill), the GPU plan in a
 * pass of its own, then the attention.
 */
async function runHook(
  name: string,
  phase: Phase,
  input: MethodGpuInput,
  params: Partial<MethodParams>,
): Promise<{ out: Float32Array; count: AttentionCount }> {
  const { device } = ctx;
  const { numHeads, numKvHeads, headDim, numQueries, qStart, scale } = input;
  const kv: PagedKvLayout = { pageSize: 16, numKvHeads, headDim, dtype: 'f32' };
  const keys = qStart + numQueries;
  const numPages = pagesFor(keys, kv.pageSize);
  const table = Uint32Array.from({ length: numPages }, (_, i) => i);
  const width = numKvHeads * headDim;
  const owned: GPUBuffer[] = [];
  const own = (buffer: GPUBuffer) => (owned.push(buffer), buffer);
  const pools = {
    kPool: own(createStorageBuffer(device, packPagedPool(input.k, keys, kv, table).data)),
    vPool: own(createStorageBuffer(device, packPagedPool(input.v, keys, kv, table).data)),
    pageTable: own(createStorageBuffer(device, table)),
  };
  const resolved = resolveMethod(phase, { name, params });
  const shape = { numHeads, numKvHeads, headDim };
  const cache: LayerCache = { layer: 0, shape, kv, ...pools, numPages, maxSeqLen: keys };
  const state = createLayerState(ctx, phase, resolved, cache);
  const base = { layer: 0, shape, kv, scale, ...pools };
  try {
    const obs = input.observation;
    if (state?.afterPrefillAttention && obs) {
      const q = own(createStorageBuffer(device, Float32Array.from(obs.q)));
      const out = own(createEmptyBuffer(device, obs.numQueries * numHeads * headDim * 4));
      const call = { ...base, q, out, qStart: obs.qStart, numQueries: obs.numQueries };
      const followUp = state.afterPrefillAttention(call);
      submit(followUp.record);
      await state.afterSubmit?.();
      followUp.dispose();
    }
    const last = (keys - 1) * width;
    const rows = new Float32Array(2 * width);
    rows.set(input.k.subarray(last, last + width));
    rows.set(input.v.subarray(last, last + width), width);
    const call: AttentionCall = {
      ...base,
      q: own(createStorageBuffer(device, input.q)),
      out: own(createEmptyBuffer(device, numQueries * numHeads * headDim * 4)),
      qStart,
      numQueries,
      kvRows: { buffer: own(createStorageBuffer(device, rows)), stride: 2 * width, kOffset: 0, vOffset: width }, // prettier-ignore
      state,
    };
    const op = (phase === 'prefill' ? prefillAttention : decodeAttention)(ctx, resolved, call);
    try {
      // One pass, as in the model: a GPU plan's dispatches, then the kernel on what they wrote.
      submit((pass) => {
        state?.afterKvWrite?.(0, keys)(pass);
        op.plan?.record(pass);
        op.record(pass);
      });
      const out = await readFloat32(device, call.out, numQueries * numHeads * headDim);
      return { out, count: await op.readCount() };
    } finally {
      op.dispose();
    }
  } finally {
    state?.dispose();
    owned.forEach((buffer) => buffer.destroy());
  }
}

describe('in-model attention of every method equals its CPU reference on the same q/k', () => {
  it.each(cases)('%s (%s)', async (name, phase, m) => {
    // FlexPrefill needs peaked attention to stop short of every key on so short a prompt.
    const input = inputFor(shapes[phase], 7, name === 'flexprefill' ? 8 : 2);
    if (name === 'blasst') awayKeys(input);
    const params = SPARSE_PARAMS[name];
    const { out, count } = await runHook(name, phase, input, params);
    const reference = referenceFor(m, input, params);
    // BLASST decode decides per KV head for its whole group, the reference per query head.
    const groupDecision = name === 'blasst' && phase === 'decode';
    if (!groupDecision) {
      const check = maxAbsError(out, reference.output);
      expect(check.magnitude).toBeGreaterThan(0);
      expect(check.error).toBeLessThanOrEqual(1e-4 * check.magnitude);
    }
    if (count.perHead) {
      expect(count.perHead.touched.reduce((a, b) => a + b, 0)).toBe(count.touched);
      expect(count.perHead.total.reduce((a, b) => a + b, 0)).toBe(count.total);
    }
    if (name === 'dense') {
      expect(count.touched).toBe(count.total);
      return;
    }
    if (groupDecision) {
      expect(count.touched).toBeLessThan(count.total);
      return;
    }
    // Vertical-Slash's partial 64-token blocks count as touched: its sparsity is token-level here.
    expect(reference.measuredSparsity).toBeGreaterThan(0);
    expect(UNIT_NAMES[count.unit]).toBe(reference.units.unit);
    expect([count.touched, count.total]).toEqual([reference.units.touched, reference.units.total]);
  });
});

it('BLASST prefill in the model at head dim 128 fits the device: 32 KiB of workgroup memory on SwiftShader', async () => {
  // Dense prefill's K/V tile of 32 keys fills 32 KiB at d 128; BLASST's vote needs 32 bytes more,
  // so its tile is one key chunk shorter there (blasstPrefillTileConfig): 24 keys. Keys 24 .. 71
  // hold whole tiles of 24 keys and of 32.
  const shape = { numHeads: 2, numKvHeads: 1, headDim: 128, numQueries: 128, qStart: 64 };
  const input = awayKeys(inputFor(shape, 11, 2), 24, 72);
  // lambda 1: a tile is skipped when every one of its 128 rows has seen a higher score before.
  const params = { ...SPARSE_PARAMS.blasst, lambda: 1 };
  const { out, count } = await runHook('blasst', 'prefill', input, params);
  const reference = referenceFor(getMethod('blasst'), input, params);
  const check = maxAbsError(out, reference.output);
  expect(check.error).toBeLessThanOrEqual(1e-4 * check.magnitude);
  expect([count.touched, count.total]).toEqual([reference.units.touched, reference.units.total]);
  expect(count.touched).toBeLessThan(count.total);
});

// ---------------------------------------------------------------------------------------------
// Every method inside the model (llama_gqa_tied: 2 layers, 4 heads, 2 KV heads).

// 128 prompt tokens (2 blocks of 64, 8 pages of 16), then 2 decode steps.
const prompt = Array.from({ length: 128 }, (_, i) => (i * 37 + 11) % 320);
/** BLASST prefill votes per query tile of the dense kernel (128 or 256 rows): a longer prompt. */
const longPrompt = Array.from({ length: 224 }, (_, i) => (i * 53 + 7) % 320);
const next = [5, 17];

interface Run {
  prefill: Float32Array;
  decode: Float32Array[];
  stats: AttentionStats;
}

async function run(attention: AttentionOptions, ids = prompt, prefillChunk = 512): Promise<Run> {
  const maxSeqLen = ids.length + 8;
  const model = createModel(ctx, folder.model, { maxSeqLen, prefillChunk, attention });
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

/** What changes with the phase's method: every logit row from the prefill on, or decode's. */
const rowsOf = (r: Run, phase: Phase) =>
  phase === 'prefill' ? [r.prefill, ...r.decode] : r.decode;

/** Params that drop something in this model (BLASST: lambda 1 skips what the running max beats). */
const MODEL_SPARSE_PARAMS: Record<string, Partial<MethodParams>> = {
  ...SPARSE_PARAMS,
  vertical_slash: { verticalSize: 4, lastQ: 16, sinkColumns: 2, localDiagonals: 4, block: 64 },
  flexprefill: { ...SPARSE_PARAMS.flexprefill, approximationSize: 16 },
  blasst: { lambda: 1, block: 16 },
  quest: { tokenBudget: 32 },
};

describe('every registry method runs inside the model', () => {
  let dense: Run;
  let denseLong: Run;
  beforeAll(async () => {
    dense = await run({});
    denseLong = await run({}, longPrompt);
  });

  it.each(cases)('%s (%s): paramsForSparsity(0) gives the dense logits', async (name, phase, m) => {
    const shape: MethodShape = {
      ...folder.config,
      numQueries: phase === 'prefill' ? prompt.length : 1,
      qStart: phase === 'prefill' ? 0 : prompt.length + next.length - 1,
    };
    const r = await run({ [phase]: { name, params: m.paramsForSparsity(0, shape) } });
    for (const [i, row] of [r.prefill, ...r.decode].entries()) {
      expect(maxAbs(row, [dense.prefill, ...dense.decode][i]), `row set ${i}`).toBeLessThan(1e-4);
    }
    for (const layer of r.stats[phase]) {
      expect(layer).toMatchObject({ method: name, sparsity: 0 });
      expect(layer.calls).toBe(phase === 'prefill' ? 1 : next.length);
    }
  });

  it.each(cases.filter(([name]) => name !== 'dense'))(
    '%s (%s): sparsifying params change the logits and record the sparsity',
    async (name, phase) => {
      const long = name === 'blasst' && phase === 'prefill';
      const attention = { [phase]: { name, params: MODEL_SPARSE_PARAMS[name] } };
      const r = await run(attention, long ? longPrompt : prompt);
      const baseline = long ? denseLong : dense;
      const rows = rowsOf(r, phase);
      expect(rows.every((row) => row.every(Number.isFinite))).toBe(true);
      const change = Math.max(...rows.map((row, i) => maxAbs(row, rowsOf(baseline, phase)[i])));
      expect(change).toBeGreaterThan(1e-4);
      for (const layer of r.stats[phase]) {
        expect(layer.method).toBe(name);
        expect(layer.sparsity).toBeCloseTo(1 - layer.touched / layer.total, 12);
        // Query heads (block-sparse kernel, BLASST prefill) or KV heads (pages, tokens, BLASST decode).
        expect([2, 4]).toContain(layer.perHead?.length);
        // Every head has the same dense total, so the heads' mean is the layer's sparsity.
        const perHead = layer.perHead ?? [];
        const mean = perHead.reduce((a, b) => a + b, 0) / perHead.length;
        expect(mean).toBeCloseTo(layer.sparsity, 12);
        expect(layer.plannerMs).toBeGreaterThanOrEqual(0);
        // A plan on the GPU is a timed pass of its own: its time is the layer's planner cost.
        const gpuPlan = ['block_sparse', 'vertical_slash', 'flexprefill'].includes(name);
        if (gpuPlan && ctx.caps.timestampQuery) expect(layer.plannerGpuMs).toBeGreaterThan(0);
        if (!gpuPlan) expect(layer.plannerGpuMs).toBe(0);
      }
      // Vertical-Slash and FlexPrefill keep parts of every 64-token block of so short a prompt:
      // their kernel-counted (block) sparsity is 0 though tokens were dropped.
      const blockLevelOnly = name === 'vertical_slash' || name === 'flexprefill';
      const most = Math.max(...r.stats[phase].map((layer) => layer.sparsity));
      if (blockLevelOnly) expect(most).toBeGreaterThanOrEqual(0);
      else expect(most).toBeGreaterThan(0);
    },
  );

  it('SnapKV selects from the last prefill chunk: chunked prefill decodes as one chunk does', async () => {
    // The observation window (8 queries) fits the last chunk of 64: the same tokens are kept.
    for (const name of ['snapkv', 'ada_snapkv']) {
      const attention = { decode: { name, params: MODEL_SPARSE_PARAMS[name] } };
      const whole = await run(attention);
      const chunked = await run(attention, prompt, 64);
      chunked.decode.forEach((row, i) => expect(maxAbs(row, whole.decode[i])).toBeLessThan(1e-4));
      const counts = (r: Run) => r.stats.decode.map((l) => [l.touched, l.total, l.perHead]);
      expect(counts(chunked)).toEqual(counts(whole));
    }
  });
});
