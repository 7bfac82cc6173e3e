/** SnapKV (decode): evict once after prefill, keeping the tokens the last prompt queries attend. */
import type { GpuContext } from '../gpu/context';
import type { ReferenceInput } from '../kernels/attention.reference';
import { createKvWrite } from '../kernels/model/kvWrite';
import type { GpuPlan } from '../kernels/planners';
import {
  compactKvOnGpu,
  decodeCompactedOnGpu,
  snapKVOnHost,
  snapKVSelectOnGpu,
  type CompactOutputs,
  type SnapKVSelectOptions,
} from '../kernels/snapKV';
import {
  denseDecodeOp,
  prefillParams,
  readU32,
  sumOf,
  type InModelAttention,
  type LayerState,
} from './inModel';
import { numKeysOf } from './reference/masks';
import {
  compactedDecode,
  snapKV,
  SNAPKV_DEFAULTS,
  type KvSelection,
  type SnapKVParams,
} from './reference/snapKV';
import {
  checkSparsity,
  gpuKvLayout,
  meanOf,
  numberParam,
  requireDecode,
  resolveParams,
  shapeLength,
  type MethodGpuInput,
  type MethodGpuResult,
  type MethodInput,
  type MethodParams,
  type MethodReference,
  type ParamSpec,
  type SparseMethod,
} from './types';

const D = SNAPKV_DEFAULTS;

const int = (max = 1 << 24, min = 0) => ({ kind: 'int' as const, min, max, step: 1 });

export const snapKVParamSpecs: readonly ParamSpec[] = [
  {
    key: 'capacity',
    label: 'Capacity',
    ...int(1 << 24, 1),
    default: D.capacity,
    description:
      'Prompt tokens kept per KV head (Ada-SnapKV: on average): the budget knob. Must cover ' +
      'localWindow + prefixTokens (clamped to the prompt length).',
    sparsityKnob: 'decreasing',
  },
  {
    key: 'window',
    label: 'Observation window',
    ...int(1 << 24, 1),
    default: D.window,
    description: 'Last prompt queries whose softmax scores the keys.',
  },
  {
    key: 'poolKernel',
    label: 'Pooling kernel',
    ...int(255, 1),
    step: 2,
    default: D.poolKernel,
    description: '1-D average pooling width (odd) smoothing the scores.',
  },
  {
    key: 'localWindow',
    label: 'Recent tokens kept',
    ...int(),
    default: D.localWindow,
    description: 'Last prompt tokens always kept.',
  },
  {
    key: 'prefixTokens',
    label: 'Prefix tokens kept',
    ...int(),
    default: D.prefixTokens,
    description: 'First prompt tokens always kept.',
  },
];

export function snapKVTyped(p: MethodParams): SnapKVParams {
  return {
    capacity: numberParam(p, 'capacity'),
    window: numberParam(p, 'window'),
    poolKernel: numberParam(p, 'poolKernel'),
    localWindow: numberParam(p, 'localWindow'),
    prefixTokens: numberParam(p, 'prefixTokens'),
  };
}

/** capacity = (1 - s) * length, at least the forced tokens. */
export function capacityForSparsity(s: number, length: number): number {
  const forced = D.localWindow + D.prefixTokens;
  return Math.max(forced, Math.round((1 - s) * length));
}

/**
 * Select on the observation (the prompt; the decode input itself when absent), then one decode
 * query against the compacted cache: prompt tokens where kept, later tokens always.
 */
export function evictionReference(
  input: MethodInput,
  select: (observation: ReferenceInput) => KvSelection,
): MethodReference {
  requireDecode(input, 'KV eviction');
  const observation = input.observation ?? input;
  const promptLength = numKeysOf(observation);
  const numKeys = numKeysOf(input);
  if (promptLength > numKeys) throw new Error('the observation is longer than the decode cache');
  const { kept } = select(observation);
  const result = compactedDecode(input, kept, promptLength);
  const touched = kept.reduce((n, list) => n + list.length + (numKeys - promptLength), 0);
  return {
    output: result.out,
    kept: { kind: 'tokens', perKvHead: kept },
    mask: result.mask,
    measuredSparsity: result.sparsity,
    recall: meanOf(result.recall),
    units: { unit: 'token', touched, total: numKeys * input.numKvHeads },
  };
}

/**
 * The GPU path of SnapKV and Ada-SnapKV: select on the observation (the decode input itself when
 * absent) and compact the cache with snapKVOnHost, then decode the query over the compacted cache.
 * Counted by the kernel: the tokens each KV head holds after compaction (kept prompt tokens plus
 * the tokens after the prompt) against the full cache, as evictionReference's units.
 */
export async function runEviction(
  ctx: GpuContext,
  input: MethodGpuInput,
  options: SnapKVSelectOptions,
): Promise<MethodGpuResult> {
  requireDecode(input, 'KV eviction');
  const observation = input.observation ?? input;
  const promptLength = numKeysOf(observation);
  const kvLen = input.qStart + 1;
  if (promptLength > kvLen) throw new Error('the observation is longer than the decode cache');
  const q = Float32Array.from(observation.q);
  const start = performance.now();
  const selected = await snapKVOnHost(
    ctx,
    {
      numQueries: observation.numQueries,
      qStart: observation.qStart,
      numHeads: input.numHeads,
      numKvHeads: input.numKvHeads,
      headDim: input.headDim,
      scale: input.scale,
      kv: gpuKvLayout(input),
      q,
      k: input.k,
      v: input.v,
      kvLen,
    },
    options,
  );
  try {
    const out = await decodeCompactedOnGpu(ctx, selected.cache, input.q, input);
    const kernelMs = performance.now() - start;
    const touched = selected.cache.lengths.reduce((n, c) => n + c, 0);
    const total = kvLen * input.numKvHeads;
    return {
      out,
      stats: {
        measuredSparsity: total > 0 ? 1 - touched / total : 0,
        blocksOrPagesTouched: touched,
        total,
        unit: 'token',
        countedBy: 'kernel',
        kernelMs,
      },
    };
  } finally {
    selected.destroy();
  }
}

/** The compacted cache of one layer, from the last prefill chunk. */
interface CompactedLayer {
  compact: GpuPlan<CompactOutputs>;
  /** Tokens the selection ran over; decode token t (from 0) sits at slot keptStride + t. */
  promptLength: number;
  keptStride: number;
  /** Kept prompt tokens per KV head, as the compaction kernel wrote them (after the submit). */
  lengths: number[] | null;
}

interface EvictionState extends LayerState {
  current: CompactedLayer | null;
}

/**
 * SnapKV and Ada-SnapKV in the model. After every prefill chunk's attention at the layer, the GPU
 * selection (kernels/snapKV.ts) scores the keys with the chunk's last `window` queries (so a chunk
 * shorter than the window scores with fewer queries than the reference) and the kept tokens are
 * compacted into the layer's own pools: each KV head's kept prompt tokens from slot 0, then room
 * for every token decoded later, from slot keptStride on. The last chunk's compaction is the one
 * decode uses. Each decode step appends its token's K and V at slot keptStride + t (the same slot
 * for every head) and attends over the compacted cache: SnapKV heads all keep keptStride tokens,
 * so the dense decode kernel runs with kvLen = keptStride + t + 1. Ada-SnapKV heads keep different
 * counts: the same kernel skips, per KV head, the slots between its kept tokens and keptStride (a
 * token gap), so each head reads only its kept and decoded tokens. Counts:
 * the tokens each KV head attends (its kept prompt tokens plus the decoded ones) against the full
 * cache, as the reference's units.
 */
export function evictionInModel(
  name: string,
  optionsOf: (p: MethodParams) => SnapKVSelectOptions,
): InModelAttention {
  return {
    createLayerState(ctx, cache, params): EvictionState {
      const options = optionsOf(params);
      const state: EvictionState = {
        current: null,
        afterPrefillAttention(call) {
          const select = snapKVSelectOnGpu(ctx, prefillParams(call), call, options);
          const promptLength = call.qStart + call.numQueries;
          const { kept, lengths, keptStride } = select.outputs;
          const compact = compactKvOnGpu(
            ctx,
            {
              kv: call.kv,
              promptLength,
              kvLen: promptLength,
              keptStride,
              headStride: keptStride + cache.maxSeqLen - promptLength,
            },
            { kPool: call.kPool, vPool: call.vPool, pageTable: call.pageTable, kept, lengths },
          );
          state.current?.compact.destroy();
          state.current = { compact, promptLength, keptStride, lengths: null };
          return {
            record: (pass) => {
              select.record(pass);
              compact.record(pass);
            },
            dispose: () => select.destroy(),
          };
        },
        async afterSubmit() {
          const current = state.current;
          if (!current || current.lengths) return;
          const words = await readU32(ctx, current.compact.outputs.lengths, cache.kv.numKvHeads);
          current.lengths = Array.from(words);
        },
        dispose: () => state.current?.compact.destroy(),
      };
      return state;
    },
    decode(ctx, _params, call) {
      const current = (call.state as EvictionState | undefined)?.current;
      const t = current ? call.qStart - current.promptLength : -1;
      if (!current?.lengths || t < 0) {
        throw new Error(
          `decode method '${name}' for layer ${call.layer}: no prompt was prefilled before this ` +
            'decode step (the kept tokens are chosen from the prompt; run prefill first)',
        );
      }
      if (!call.kvRows)
        throw new Error(`decode method '${name}': the new token's K/V rows are missing`);
      const { keptStride } = current;
      const lengths = current.lengths;
      const pools = current.compact.outputs;
      const slot = keptStride + t;
      const rows = call.kvRows;
      const append = createKvWrite(
        ctx,
        {
          tokens: 1,
          kv: call.kv,
          start: slot,
          kStride: rows.stride,
          kOffset: rows.kOffset,
          vStride: rows.stride,
          vOffset: rows.vOffset,
        },
        {
          k: rows.buffer,
          v: rows.buffer,
          pageTable: pools.pageTable,
          kPool: pools.kPool,
          vPool: pools.vPool,
        },
      );
      // Each KV head skips the slots between its kept tokens and keptStride (none for SnapKV).
      const gaps = lengths.map((n) => ({ start: n, length: keptStride - n }));
      const attend = denseDecodeOp(ctx, call, { ...pools, kvLen: slot + 1 }, { tokenGaps: gaps });
      const touched = lengths.map((n) => n + t + 1);
      const total = touched.map(() => call.qStart + 1);
      return {
        record: (pass) => {
          append.record(pass);
          attend.record(pass);
        },
        dispose: () => {
          append.dispose();
          attend.dispose();
        },
        readCount: async () => ({
          unit: 'tokens',
          touched: sumOf(touched),
          total: sumOf(total),
          perHead: { touched, total },
          // Ada-SnapKV's per-head mask is built on the CPU each step.
          plannerMs: (await attend.readCount()).plannerMs,
        }),
      };
    },
  };
}

export const snapKVMethod: SparseMethod = {
  name: 'snapkv',
  label: 'SnapKV',
  description:
    'KV-cache eviction once after prefill: the last prompt queries\u2019 softmax, averaged over ' +
    'the GQA group and summed over the window, smoothed by average pooling; each KV head keeps ' +
    'its top `capacity` tokens (the last 128 and first 4 always). Decode reads only those.',
  citation:
    'Li et al., SnapKV: LLM Knows What You are Looking for Before Generation (NeurIPS 2024)',
  phases: ['decode'],
  params: snapKVParamSpecs,
  sparsityMapping:
    'Nominal: capacity = (1 - s) * length, at least localWindow + prefixTokens (132), so short ' +
    'caches stay dense.',
  paramsForSparsity(s, shape) {
    checkSparsity(s);
    return resolveParams(snapKVParamSpecs, {
      capacity: capacityForSparsity(s, shapeLength(shape)),
    });
  },
  reference: (input, p) =>
    evictionReference(input, (obs) => snapKV(obs, snapKVTyped(resolveParams(snapKVParamSpecs, p)))),
  planner: 'gpu',
  run: (ctx, input, p) =>
    runEviction(ctx, input, {
      ...snapKVTyped(resolveParams(snapKVParamSpecs, p)),
      mode: 'snapkv',
    }),
  inModel: evictionInModel('snapkv', (p) => ({ ...snapKVTyped(p), mode: 'snapkv' })),
};
