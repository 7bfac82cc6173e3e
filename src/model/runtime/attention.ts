/**
 * The two attention call sites of the forward pass, one function per phase, each dispatching on a
 * method name. Only 'dense' exists here; the sparse-method registry (src/methods/registry.ts) is
 * meant to plug in through these two functions, per layer.
 */
import type { GpuContext } from '../../gpu/context';
import { createDenseDecode } from '../../kernels/denseDecode';
import { recordDensePrefill } from '../../kernels/densePrefill';
import type { AttentionShape, PagedKvLayout } from '../../kernels/layout';
import type { ModelOp } from '../../kernels/model/common';

export type AttentionPhase = 'prefill' | 'decode';

export interface LayerAttentionOverride {
  prefill?: string;
  decode?: string;
}

export interface AttentionOptions {
  /** Method for every layer's prefill (default 'dense'). */
  prefill?: string;
  /** Method for every layer's decode (default 'dense'). */
  decode?: string;
  /** Per-layer overrides; entry i (if present) replaces the defaults for layer i. */
  layers?: readonly (LayerAttentionOverride | null | undefined)[];
}

/** Resolved per-layer method names. */
export interface AttentionPlan {
  prefill: string[];
  decode: string[];
}

export const PREFILL_METHODS: readonly string[] = ['dense'];
export const DECODE_METHODS: readonly string[] = ['dense'];

function check(phase: AttentionPhase, name: string, where: string): string {
  const known = phase === 'prefill' ? PREFILL_METHODS : DECODE_METHODS;
  if (!known.includes(name)) {
    throw new Error(
      `unknown ${phase} attention method '${name}'${where} (available: ${known.join(', ')})`,
    );
  }
  return name;
}

export function resolveAttention(options: AttentionOptions = {}, numLayers: number): AttentionPlan {
  const layers = options.layers ?? [];
  if (layers.length > numLayers) {
    throw new Error(`attention overrides name ${layers.length} layers, the model has ${numLayers}`);
  }
  const plan: AttentionPlan = { prefill: [], decode: [] };
  for (let i = 0; i < numLayers; i++) {
    const where = layers[i] ? ` for layer ${i}` : '';
    plan.prefill.push(check('prefill', layers[i]?.prefill ?? options.prefill ?? 'dense', where));
    plan.decode.push(check('decode', layers[i]?.decode ?? options.decode ?? 'dense', where));
  }
  return plan;
}

export interface AttentionCall {
  layer: number;
  shape: AttentionShape;
  kv: PagedKvLayout;
  scale: number;
  /** [numQueries][numHeads][headDim] f32 */
  q: GPUBuffer;
  kPool: GPUBuffer;
  vPool: GPUBuffer;
  pageTable: GPUBuffer;
  /** [numQueries][numHeads][headDim] f32 */
  out: GPUBuffer;
  /** Absolute position of query 0; the keys 0 .. qStart + numQueries - 1 are in the pools. */
  qStart: number;
  numQueries: number;
}

/** Causal attention of numQueries new tokens over the cache (their own K/V already written). */
export function prefillAttention(ctx: GpuContext, method: string, call: AttentionCall): ModelOp {
  check('prefill', method, ` for layer ${call.layer}`);
  const record = recordDensePrefill(
    ctx,
    {
      ...call.shape,
      numQueries: call.numQueries,
      qStart: call.qStart,
      scale: call.scale,
      kv: call.kv,
    },
    { q: call.q, kPool: call.kPool, vPool: call.vPool, pageTable: call.pageTable, out: call.out },
  );
  return { record, dispose: () => {} };
}

/** One query per head at position qStart over keys 0 .. qStart. */
export function decodeAttention(ctx: GpuContext, method: string, call: AttentionCall): ModelOp {
  check('decode', method, ` for layer ${call.layer}`);
  if (call.numQueries !== 1) throw new Error('decode attention takes one query');
  const decode = createDenseDecode(
    ctx,
    { ...call.shape, kvLen: call.qStart + 1, scale: call.scale, kv: call.kv },
    { q: call.q, kPool: call.kPool, vPool: call.vPool, pageTable: call.pageTable, out: call.out },
  );
  return { record: decode.record, dispose: () => decode.scratch.forEach((b) => b.destroy()) };
}
