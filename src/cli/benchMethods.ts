/**
 * The benchmark's `methods` section: every method of the registry (src/methods/registry.ts), in
 * each phase it serves, at each target sparsity, next to dense in the same run, on the structured
 * inputs (benchCommon.ts) and through the path the model takes (src/model/runtime/attention.ts:
 * the method's params for the sparsity, its layer state, its in-model op). A method added to the
 * registry is benchmarked without a line here.
 *
 * Per row: the GPU planner (an op's `plan` dispatches, before its kernel) and the kernel timed
 * apart (a GPU plan's dispatches include its packing into the kernel's mask); the CPU planner time
 * the op reported (a mask built on the CPU); the sparsity from what the kernel counted; speed-ups
 * over dense for the kernel alone and with the GPU planner. A method whose planner runs inside its
 * kernel's dispatches (Quest) or inside the softmax loop (BLASST) has no planner row of its own:
 * its kernel time includes it. Decode methods that choose at the end of prefill (SnapKV,
 * Ada-SnapKV) report that once-per-prompt selection and compaction as their GPU planner time.
 *
 * Prefill runs over f32 KV, decode over f16 (the formats of the sparse and Quest sections). A
 * method whose CPU planner would take longer than `cpuPlannerLimitMs` at a length, extrapolated
 * as L^2 from the longest it took at a shorter one (a mask_mod evaluated per element), is not run
 * there; the log says so.
 */
import { createStorageBuffer } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import type { RecordDispatches } from '../gpu/timer';
import type { AttentionShape } from '../kernels/layout';
import type { AttentionCall, AttentionOp, LayerCache } from '../methods/inModel';
import { methodsFor } from '../methods/registry';
import type { MethodParams, Phase, SparseMethod } from '../methods/types';
import {
  createLayerState,
  decodeAttention,
  prefillAttention,
  resolveMethod,
  type ResolvedMethod,
} from '../model/runtime/attention';
import { structuredInputs, structuredQueries, type BenchRow } from './benchCommon';

export interface MethodsBenchOptions {
  shape: AttentionShape;
  shapeName: string;
  prefillLengths: readonly number[];
  decodeLengths: readonly number[];
  sparsities: readonly number[];
  /** Only these methods (by registry name); all when absent. */
  methodNames?: ReadonlySet<string>;
  /** Params that replace a method's own, by registry name (a user pattern's source). */
  paramOverrides?: Readonly<Record<string, Partial<MethodParams>>>;
  /** The benchmark's timer (ms of GPU time per run of `record`). */
  time: (record: RecordDispatches) => Promise<number>;
  runOnce: (record: RecordDispatches) => Promise<void>;
  report: (row: BenchRow) => void;
}

/** A CPU planner predicted to be slower than this at a length is not run there. */
const cpuPlannerLimitMs = 10_000;
/** Queries of the prompt's last prefill chunk, what a decode method's end-of-prompt hook sees. */
const promptChunk = 512;

interface Timed {
  plannerMs?: number;
  /** Decode methods that choose at the end of the prompt: that selection's GPU time. */
  promptPlannerMs?: number;
  plannerCpuMs?: number;
  ms: number;
  measuredSparsity: number;
}

/** Plans (timed apart when the op plans on the GPU), then times the kernel and reads its count. */
async function timeOp(options: MethodsBenchOptions, op: AttentionOp): Promise<Timed> {
  let plannerMs: number | undefined;
  if (op.plan) {
    plannerMs = await options.time(op.plan.record);
    await options.runOnce(op.plan.record);
  }
  const ms = await options.time(op.record);
  const count = await op.readCount();
  return {
    plannerMs,
    plannerCpuMs: count.plannerMs,
    ms,
    measuredSparsity: 1 - count.touched / count.total,
  };
}

interface MethodCase {
  phase: Phase;
  resolved: ResolvedMethod;
  call: AttentionCall;
  cache: LayerCache;
  length: number;
}

/**
 * One method at one setting, as the model runs it: its layer state brought up to date (Quest's
 * summaries over the whole cache; SnapKV's end-of-prompt selection from the prompt's last chunk of
 * queries, timed as promptPlannerMs), then its op, planned and timed.
 */
async function timeMethod(
  ctx: GpuContext,
  options: MethodsBenchOptions,
  { phase, resolved, call, cache, length }: MethodCase,
): Promise<Timed> {
  const state = createLayerState(ctx, phase, resolved, cache);
  try {
    let promptPlannerMs: number | undefined;
    if (state?.afterKvWrite) await options.runOnce(state.afterKvWrite(0, length));
    if (phase === 'decode' && state?.afterPrefillAttention) {
      const chunk = Math.min(promptChunk, length - 1);
      const promptQ = createStorageBuffer(
        ctx.device,
        structuredQueries(call.shape, chunk, length - 1 - chunk),
        'bench prompt queries',
      );
      const select = state.afterPrefillAttention({
        ...call,
        q: promptQ,
        qStart: length - 1 - chunk,
        numQueries: chunk,
      });
      promptPlannerMs = await options.time(select.record);
      await options.runOnce(select.record);
      await state.afterSubmit?.();
      select.dispose();
      promptQ.destroy();
    }
    const build = phase === 'prefill' ? prefillAttention : decodeAttention;
    const op = build(ctx, resolved, { ...call, state });
    try {
      return { ...(await timeOp(options, op)), promptPlannerMs };
    } finally {
      op.dispose();
    }
  } finally {
    state?.dispose();
  }
}

function describeParams(method: SparseMethod, params: Record<string, unknown>): string {
  const knob = method.params.find((spec) => spec.sparsityKnob);
  if (!knob) return '';
  const value = params[knob.key];
  const shown =
    typeof value === 'number' && !Number.isInteger(value) ? value.toPrecision(3) : value;
  return `${knob.key} ${String(shown)}`;
}

async function benchPhase(
  ctx: GpuContext,
  options: MethodsBenchOptions,
  phase: Phase,
  length: number,
  cpuPlanners: Map<string, { length: number; ms: number }>,
) {
  const { shape, shapeName, report } = options;
  const dtype = phase === 'prefill' ? 'f32' : 'f16';
  const inputs = structuredInputs(ctx, shape, length, phase, dtype);
  const { kv, buffers, decode, pages } = inputs;
  const numQueries = phase === 'prefill' ? length : 1;
  const qStart = length - numQueries;
  const call: AttentionCall = {
    layer: 0,
    shape,
    kv,
    scale: decode.scale,
    ...buffers,
    qStart,
    numQueries,
  };
  const cache: LayerCache = { layer: 0, shape, kv, ...buffers, numPages: pages, maxSeqLen: length };
  // Decode: the new token's K and V rows, which methods with a cache of their own append.
  let newRow: GPUBuffer | null = null;
  if (phase === 'decode') {
    const { k, v } = inputs.kvRow(length - 1);
    const rows = new Float32Array(k.length + v.length);
    rows.set(k);
    rows.set(v, k.length);
    newRow = createStorageBuffer(ctx.device, rows, 'bench new kv row');
    call.kvRows = { buffer: newRow, stride: rows.length, kOffset: 0, vOffset: k.length };
  }
  const dense = (phase === 'prefill' ? prefillAttention : decodeAttention)(ctx, 'dense', call);
  const denseMs = await options.time(dense.record);
  dense.dispose();
  console.error(`  dense ${phase} (structured, ${dtype}) L=${length}: ${denseMs.toFixed(4)} ms`);

  for (const method of methodsFor(phase)) {
    if (method.name === 'dense') continue;
    if (options.methodNames && !options.methodNames.has(method.name)) continue;
    const seen = cpuPlanners.get(method.name);
    const predictedMs = seen ? seen.ms * (length / seen.length) ** 2 : 0;
    if (predictedMs > cpuPlannerLimitMs) {
      console.error(
        `  ${method.name} ${phase} L=${length}: not run, its CPU planner would take about ${Math.round(predictedMs)} ms (${Math.round(seen?.ms ?? 0)} ms at L=${seen?.length})`,
      );
      continue;
    }
    for (const s of options.sparsities) {
      const params = {
        ...method.paramsForSparsity(s, { ...shape, numQueries, qStart }),
        ...options.paramOverrides?.[method.name],
      };
      const resolved = resolveMethod(phase, { name: method.name, params });
      const label = describeParams(method, resolved.params);
      const kernel = `${method.name} ${phase}${label ? ` (${label})` : ''}`;
      // A method that fails (a GPU validation error, a thrown planner) loses its row, not the run.
      ctx.device.pushErrorScope('validation');
      let timed: Timed | null = null;
      let failure: unknown = null;
      try {
        timed = await timeMethod(ctx, options, { phase, resolved, call, cache, length });
      } catch (error) {
        failure = error;
      }
      const gpuError = await ctx.device.popErrorScope();
      if (failure || gpuError || !timed) {
        console.error(`  ${kernel} L=${length}: failed:`, failure ?? gpuError?.message);
        process.exitCode = 1;
        continue;
      }
      report({
        kernel,
        shape: shapeName,
        length,
        kvDtype: dtype,
        ms: timed.ms,
        targetSparsity: s,
        measuredSparsity: timed.measuredSparsity,
        plannerMs: timed.plannerMs ?? timed.promptPlannerMs,
        plannerCpuMs: timed.plannerCpuMs,
        speedup: denseMs / timed.ms,
        // The end-of-prompt selection is paid once per prompt, not per step: not in this ratio.
        speedupWithPlanner: denseMs / (timed.ms + (timed.plannerMs ?? 0)),
        config: {
          method: method.name,
          phase,
          params: resolved.params,
          denseMs,
          promptPlannerMs: timed.promptPlannerMs,
        },
      });
      const cpuMs = timed.plannerCpuMs ?? 0;
      if (cpuMs > (cpuPlanners.get(method.name)?.ms ?? 0)) {
        cpuPlanners.set(method.name, { length, ms: cpuMs });
      }
    }
  }
  newRow?.destroy();
  inputs.destroy();
}

export async function benchMethods(ctx: GpuContext, options: MethodsBenchOptions) {
  for (const [phase, lengths] of [
    ['prefill', options.prefillLengths],
    ['decode', options.decodeLengths],
  ] as const) {
    const cpuPlanners = new Map<string, { length: number; ms: number }>();
    for (const length of lengths) {
      // A length that fails (inputs past the device's limits) leaves the others' rows.
      try {
        await benchPhase(ctx, options, phase, length, cpuPlanners);
      } catch (error) {
        console.error(`  methods, ${phase} L=${length}: failed:`, error);
        process.exitCode = 1;
      }
    }
  }
}
