/**
 * Logits -> next token.
 *
 * The GPU reduces the vocabulary (up to ~150k logits) to a few candidates: shaders/model/
 * sampling.wgsl finds the top K (K <= 64, sorted, ties to the lower index) in two passes, and K = 1
 * is the argmax, whose index buffer can feed the next step's embedding without a CPU round trip.
 * The CPU then does what is cheap on K values and awkward on a GPU: temperature, softmax, top-p
 * and the draw from a seeded generator, in float64 (sampleCandidates). The softmax runs over the K
 * candidates only, which is exact for top-k sampling (transformers applies top-k before top-p);
 * without a top-k (topK 0) the mass beyond the 64 best tokens is left out, a negligible change for
 * the peaked distributions of language models.
 */
import { bindGroup, createEmptyBuffer, readBuffer } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import { grid, uniformBuffer, type ModelOp } from './common';

export const maxTopK = 64;
const workgroupSize = 256;
const perThread = 8;
const noIndex = 0xffffffff;

export interface TopKParams {
  vocabSize: number;
  /** 1 ..= 64 */
  k: number;
  /** Element offset of the logits row, e.g. the last token's row of a prefill. */
  offset?: number;
}

export interface TopKBuffers {
  logits: GPUBuffer;
  /** [k] f32, best first. */
  values: GPUBuffer;
  /** [k] u32 token ids. */
  indices: GPUBuffer;
}

export function createTopK(ctx: GpuContext, params: TopKParams, buffers: TopKBuffers): ModelOp {
  const { vocabSize, k } = params;
  if (!Number.isInteger(k) || k < 1 || k > Math.min(maxTopK, vocabSize)) {
    throw new Error(`top-k: k must be in 1..${Math.min(maxTopK, vocabSize)}, got ${k}`);
  }
  const { device } = ctx;
  const blocks = Math.ceil(vocabSize / (workgroupSize * perThread));
  const candidates = blocks * k;
  const partial = ctx.pipelines.get('model/sampling', {
    FINAL: false,
    K: k,
    PER_THREAD: perThread,
  });
  const final = ctx.pipelines.get('model/sampling', {
    FINAL: true,
    K: k,
    PER_THREAD: Math.ceil(candidates / workgroupSize),
  });
  const partialValues = createEmptyBuffer(device, candidates * 4, 'top-k partial values');
  const partialIndices = createEmptyBuffer(device, candidates * 4, 'top-k partial indices');
  const partialParams = uniformBuffer(device, [vocabSize, params.offset ?? 0], [], 'top-k params');
  const finalParams = uniformBuffer(device, [candidates, 0], [], 'top-k final params');
  const partialGroup = bindGroup(device, partial, [
    partialParams,
    buffers.logits,
    partialValues,
    partialIndices,
  ]);
  const finalGroup = bindGroup(device, final, [
    finalParams,
    partialValues,
    partialIndices,
    buffers.values,
    buffers.indices,
  ]);
  const workgroups = grid(ctx, blocks);
  return {
    record: (pass) => {
      pass.setPipeline(partial);
      pass.setBindGroup(0, partialGroup);
      pass.dispatchWorkgroups(...workgroups);
      pass.setPipeline(final);
      pass.setBindGroup(0, finalGroup);
      pass.dispatchWorkgroups(1);
    },
    dispose: () => {
      for (const buffer of [partialValues, partialIndices, partialParams, finalParams]) {
        buffer.destroy();
      }
    },
  };
}

/** Argmax of a logits row into out[0] (u32): top-1, with its value in a scratch buffer. */
export function createArgmax(
  ctx: GpuContext,
  params: { vocabSize: number; offset?: number },
  buffers: { logits: GPUBuffer; out: GPUBuffer },
): ModelOp {
  const values = createEmptyBuffer(ctx.device, 4, 'argmax value');
  const topK = createTopK(
    ctx,
    { ...params, k: 1 },
    { logits: buffers.logits, values, indices: buffers.out },
  );
  return {
    record: topK.record,
    dispose: () => {
      topK.dispose();
      values.destroy();
    },
  };
}

export interface Candidates {
  /** Logits, best first. */
  values: Float32Array;
  /** Their token ids. */
  indices: Uint32Array;
}

export async function readCandidates(
  ctx: GpuContext,
  buffers: { values: GPUBuffer; indices: GPUBuffer },
  k: number,
): Promise<Candidates> {
  const [values, indices] = await Promise.all([
    readBuffer(ctx.device, buffers.values, k * 4),
    readBuffer(ctx.device, buffers.indices, k * 4),
  ]);
  return { values: new Float32Array(values), indices: new Uint32Array(indices) };
}

export interface SamplingOptions {
  /** 0: greedy. */
  temperature: number;
  /** 0: every candidate; else at most this many (<= the candidates read). */
  topK: number;
  /** Keep the smallest prefix whose probability reaches topP (1: all). */
  topP: number;
}

/** The probabilities the draw uses, over the candidates (0 for those cut by top-k or top-p). */
export function candidateProbabilities(
  candidates: Candidates,
  options: SamplingOptions,
): Float64Array {
  const { values, indices } = candidates;
  const n = options.topK > 0 ? Math.min(options.topK, values.length) : values.length;
  const probs = new Float64Array(values.length);
  if (options.temperature <= 0) {
    probs[0] = 1;
    return probs;
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (indices[i] === noIndex) break;
    probs[i] = Math.exp((values[i] - values[0]) / options.temperature);
    if (!Number.isFinite(probs[i])) probs[i] = 0;
    total += probs[i];
  }
  let before = 0;
  for (let i = 0; i < n; i++) {
    const p = probs[i] / total;
    probs[i] = i > 0 && before >= options.topP ? 0 : p;
    before += p;
  }
  const kept = probs.reduce((sum, p) => sum + p, 0);
  return probs.map((p) => p / kept);
}

/** Draws a token id from the candidates; `random` returns uniforms in [0, 1) (seed it). */
export function sampleCandidates(
  candidates: Candidates,
  options: SamplingOptions,
  random: () => number,
): number {
  const probs = candidateProbabilities(candidates, options);
  const u = random();
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    last = i;
    cumulative += probs[i];
    if (u < cumulative) return candidates.indices[i];
  }
  return candidates.indices[last];
}

/** Reference top-k on the CPU: (value descending, index ascending), NaN excluded. */
export function topKReference(logits: ArrayLike<number>, k: number): Candidates {
  const order = Array.from({ length: logits.length }, (_, i) => i)
    .filter((i) => !Number.isNaN(logits[i]))
    .sort((a, b) => logits[b] - logits[a] || a - b)
    .slice(0, k);
  return {
    values: Float32Array.from(order, (i) => logits[i]),
    indices: Uint32Array.from(order),
  };
}
