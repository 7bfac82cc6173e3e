/**
 * What one decoded token costs the CPU and the driver: submits, command encoders, buffers, bind
 * groups, query sets, buffer mappings and dispatches per token, counted by wrapping the device's
 * methods. A behaviour test of the generation loop (no timings): greedy dense decode must be one
 * submit and one 4-byte readback per token, with nothing created after warm-up, and 7 dispatches
 * per layer (the norms and SwiGLU fused into the linears that read them, RoPE into the KV write).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { acquireNodeGpuContext } from '../../src/gpu/node';
import { loadModelFolder, type ModelFolder } from '../../src/model/load';
import { createModel, type GenerateOptions, type Model } from '../../src/model/runtime/model';

const root = join(import.meta.dirname, '../fixtures/models');

interface Counts {
  submits: number;
  commandEncoders: number;
  buffers: number;
  bindGroups: number;
  querySets: number;
  maps: number;
  passes: number;
  dispatches: number;
}

const zero = (): Counts => ({
  submits: 0,
  commandEncoders: 0,
  buffers: 0,
  bindGroups: 0,
  querySets: 0,
  maps: 0,
  passes: 0,
  dispatches: 0,
});

let ctx: GpuContext;
let folder: ModelFolder;
let greedyIds: number[];
let promptIds: number[];
const counts = zero();

/** Wraps the device's and queue's methods (own properties shadow the prototype's) to count calls. */
function instrument(device: GPUDevice) {
  const count = <T extends object, K extends keyof T & string>(
    target: T,
    name: K,
    key: keyof Counts,
    after?: (result: unknown) => void,
  ) => {
    const original = (target[name] as (...args: unknown[]) => unknown).bind(target);
    Object.defineProperty(target, name, {
      configurable: true,
      value: (...args: unknown[]) => {
        counts[key] += 1;
        const result = original(...args);
        after?.(result);
        return result;
      },
    });
  };
  count(device.queue, 'submit', 'submits');
  count(device, 'createCommandEncoder', 'commandEncoders', (encoder) =>
    count(encoder as GPUCommandEncoder, 'beginComputePass', 'passes', (pass) =>
      count(pass as GPUComputePassEncoder, 'dispatchWorkgroups', 'dispatches'),
    ),
  );
  count(device, 'createBindGroup', 'bindGroups');
  count(device, 'createQuerySet', 'querySets');
  count(device, 'createBuffer', 'buffers', (buffer) =>
    count(buffer as GPUBuffer, 'mapAsync', 'maps'),
  );
}

beforeAll(async () => {
  ctx = await acquireNodeGpuContext();
  folder = await loadModelFolder(join(root, 'llama_gqa_tied'));
  const reference = JSON.parse(
    readFileSync(join(root, 'llama_gqa_tied', 'reference.json'), 'utf8'),
  ) as { prompt_ids: number[]; greedy_ids: number[] };
  greedyIds = reference.greedy_ids;
  promptIds = reference.prompt_ids;
  instrument(ctx.device);
});
afterAll(() => ctx.device.destroy());

/** What generate() of `tokens` tokens does, counted. */
async function counted(model: Model, tokens: number, options: Partial<GenerateOptions> = {}) {
  const before = { ...counts };
  const result = await model.generate(promptIds, {
    maxNewTokens: tokens,
    stopTokens: [],
    ...options,
  });
  const spent = zero();
  for (const key of Object.keys(spent) as (keyof Counts)[]) spent[key] = counts[key] - before[key];
  return { result, spent };
}

/** Per decoded token: the difference between generating 1 + 2n and 1 + n tokens, over n. */
async function perToken(model: Model, options: Partial<GenerateOptions> = {}) {
  const n = 8;
  await counted(model, 1 + 2 * n, options); // warm-up: pipelines, bind groups, readback slots
  const short = await counted(model, 1 + n, options);
  const long = await counted(model, 1 + 2 * n, options);
  const spent = zero();
  for (const key of Object.keys(spent) as (keyof Counts)[]) {
    spent[key] = (long.spent[key] - short.spent[key]) / n;
  }
  return { spent, long: long.result };
}

describe('per-token overhead of generate (llama_gqa_tied)', () => {
  it('greedy dense decode: one submit, one mapping, nothing created per token', async () => {
    const model = createModel(ctx, folder.model, { maxSeqLen: 48 });
    try {
      const { spent, long } = await perToken(model);
      console.log('greedy dense decode, per token:', spent);
      expect(long.ids).toEqual(greedyIds.slice(0, long.ids.length));
      expect(long.timings.decode.tokens).toBe(long.ids.length - 1);
      expect(long.timings.decode.submits).toBe(long.ids.length - 1);
      // Embedding, 7 per layer, final norm, LM head, argmax (2).
      expect(spent).toEqual({
        submits: 1,
        commandEncoders: 1,
        buffers: 0,
        bindGroups: 0,
        querySets: 0,
        maps: 1,
        passes: 1,
        dispatches: 7 * folder.config.numLayers + 5,
      });
    } finally {
      model.dispose();
    }
  });

  it('greedy steps run one ahead: the step taking token i is submitted before i is handed out', async () => {
    const model = createModel(ctx, folder.model, { maxSeqLen: 48 });
    try {
      const tokens = 6;
      const submitsAtToken: number[] = [];
      await model.generate(promptIds, {
        maxNewTokens: tokens,
        stopTokens: [],
        onToken: () => void submitsAtToken.push(counts.submits),
      });
      // One submit per step, and by the first token the second step is already in flight: between
      // the first and the last token only the steps of tokens 2 .. 5 are submitted.
      expect(submitsAtToken.at(-1)! - submitsAtToken[0]).toBe(tokens - 2);
    } finally {
      model.dispose();
    }
  });

  it('sampled dense decode: one submit and one mapping per token as well', async () => {
    const model = createModel(ctx, folder.model, { maxSeqLen: 48 });
    try {
      const options = { temperature: 0.8, topK: 8, seed: 3 };
      const { spent, long } = await perToken(model, options);
      console.log('sampled dense decode, per token:', spent);
      expect(long.ids).toHaveLength(17);
      // The same seed draws the same tokens.
      const again = await model.generate(promptIds, {
        maxNewTokens: 17,
        stopTokens: [],
        ...options,
      });
      expect(again.ids).toEqual(long.ids);
      expect(spent).toMatchObject({ submits: 1, buffers: 0, bindGroups: 0, maps: 1 });
    } finally {
      model.dispose();
    }
  });

  it('decodeStep, logits to the caller: one submit, two mappings, nothing created', async () => {
    const model = createModel(ctx, folder.model, { maxSeqLen: 48 });
    try {
      await model.prefill(promptIds);
      await model.decodeStep(greedyIds[0]); // warm-up
      const before = { ...counts };
      const steps = 4;
      let logits: Float32Array = new Float32Array();
      for (let i = 1; i <= steps; i++) logits = await model.decodeStep(greedyIds[i]);
      const spent = zero();
      for (const key of Object.keys(spent) as (keyof Counts)[]) {
        spent[key] = (counts[key] - before[key]) / steps;
      }
      console.log('decodeStep (dense), per token:', spent);
      expect(logits.indexOf(Math.max(...logits))).toBe(greedyIds[steps + 1]);
      expect(spent).toEqual({
        submits: 1,
        commandEncoders: 1,
        buffers: 0,
        bindGroups: 0,
        querySets: 0,
        maps: 2,
        passes: 1,
        dispatches: 7 * folder.config.numLayers + 3,
      });
    } finally {
      model.dispose();
    }
  });

  it('a method that builds its attention per step still decodes greedily and is counted', async () => {
    // sliding_window's default window covers this whole sequence: the dense tokens.
    const model = createModel(ctx, folder.model, {
      maxSeqLen: 48,
      attention: { decode: 'sliding_window' },
    });
    try {
      const { spent, long } = await perToken(model);
      console.log('greedy sliding_window decode (per-step attention ops), per token:', spent);
      expect(long.ids).toEqual(greedyIds.slice(0, long.ids.length));
      expect(long.timings.decode.tokens).toBe(long.ids.length - 1);
      expect(model.stats.decode[0]).toMatchObject({ method: 'sliding_window', calls: 16 });
    } finally {
      model.dispose();
    }
  });

  describe('a method that keeps state beside the cache (quest, one page of budget)', () => {
    const quest = { decode: { name: 'quest', params: { tokenBudget: 16, pageSize: 16 } } };
    const tokens = 40;
    let stepByStep: number[];
    let stepByStepStats: { touched: number; total: number; calls: number }[];

    /** decodeStep runs no step ahead: the tokens and counts greedy generation must reproduce. */
    beforeAll(async () => {
      const model = createModel(ctx, folder.model, { maxSeqLen: 64, attention: quest });
      try {
        const argmax = (logits: Float32Array) => logits.indexOf(Math.max(...logits));
        stepByStep = [argmax(await model.prefill(promptIds))];
        while (stepByStep.length < tokens) {
          stepByStep.push(argmax(await model.decodeStep(stepByStep.at(-1)!)));
        }
        stepByStepStats = model.stats.decode.map(({ touched, total, calls }) => ({
          touched,
          total,
          calls,
        }));
      } finally {
        model.dispose();
      }
    });

    it('greedy steps run one ahead, with the tokens and counts of step-by-step decode', async () => {
      const model = createModel(ctx, folder.model, { maxSeqLen: 64, attention: quest });
      try {
        const submitsAtToken: number[] = [];
        const result = await model.generate(promptIds, {
          maxNewTokens: tokens,
          stopTokens: [],
          onToken: () => void submitsAtToken.push(counts.submits),
        });
        expect(submitsAtToken.at(-1)! - submitsAtToken[0]).toBe(tokens - 2);
        expect(result.ids).toEqual(stepByStep);
        expect(result.timings.decode).toMatchObject({ tokens: tokens - 1, submits: tokens - 1 });
        const stats = model.stats.decode;
        stats.forEach(({ touched, total, calls }, layer) => {
          expect({ touched, total, calls }).toEqual(stepByStepStats[layer]);
        });
        // Quest read fewer pages than the cache holds: its selection ran.
        expect(stats[0].touched).toBeLessThan(stats[0].total);
      } finally {
        model.dispose();
      }
    });

    it('a stop token drops the step run ahead: position, counts and next token as step by step', async () => {
      const model = createModel(ctx, folder.model, { maxSeqLen: 64, attention: quest });
      try {
        const stopAt = stepByStep[30];
        const first = stepByStep.indexOf(stopAt);
        const result = await model.generate(promptIds, {
          maxNewTokens: tokens,
          stopTokens: [stopAt],
        });
        expect(result.ids).toEqual(stepByStep.slice(0, first + 1));
        expect(model.position).toBe(promptIds.length + first);
        expect(model.stats.decode[0].calls).toBe(first);
        // The dropped step wrote at the next position; decoding the stop token writes it again.
        const logits = await model.decodeStep(stopAt);
        expect(logits.indexOf(Math.max(...logits))).toBe(stepByStep[first + 1]);
      } finally {
        model.dispose();
      }
    });
  });

  it('times pipelined steps by wall clock on a device without timestamp queries', async () => {
    const noTimestamps: GpuContext = { ...ctx, caps: { ...ctx.caps, timestampQuery: false } };
    const model = createModel(noTimestamps, folder.model, { maxSeqLen: 48 });
    try {
      const result = await model.generate(promptIds, { maxNewTokens: 8, stopTokens: [] });
      expect(result.ids).toEqual(greedyIds.slice(0, 8));
      expect(result.timings.source).toBe('wall-clock');
      expect(result.timings.decode).toMatchObject({ tokens: 7, submits: 7 });
      expect(result.timings.decode.ms).toBeGreaterThan(0);
    } finally {
      model.dispose();
    }
  });

  it('a stop token ends the pipelined loop with the cache at the last accepted token', async () => {
    const model = createModel(ctx, folder.model, { maxSeqLen: 48 });
    try {
      const stopAt = greedyIds[5];
      const first = greedyIds.indexOf(stopAt);
      const result = await model.generate(promptIds, { maxNewTokens: 32, stopTokens: [stopAt] });
      expect(result.stopReason).toBe('stop-token');
      expect(result.ids).toEqual(greedyIds.slice(0, first + 1));
      expect(model.position).toBe(promptIds.length + first);
      expect(result.timings.decode.tokens).toBe(first);
      // The cache holds exactly the accepted tokens: decoding the stop token gives the next one.
      const logits = await model.decodeStep(stopAt);
      const next = logits.indexOf(Math.max(...logits));
      expect(next).toBe(greedyIds[first + 1]);
    } finally {
      model.dispose();
    }
  });
});
