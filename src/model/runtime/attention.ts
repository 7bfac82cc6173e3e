/**
 * The two attention call sites of the forward pass, one function per phase. Methods come from the
 * registry (src/methods/registry.ts) and nothing else: a name is looked up with getMethod, its
 * phases checked, its params resolved with the method's ParamSpecs (defaults filled in, kinds and
 * ranges checked), and the layer's attention is the method's own in-model hook
 * (SparseMethod.inModel, src/methods/inModel.ts). Per-layer overrides replace the defaults.
 *
 * Every op reports what its kernel counted (blocks, pages or tokens touched, and the total a dense
 * run touches, per head where the kernel counts per head), so the model can record the measured
 * sparsity per phase and layer.
 */
import type { GpuContext } from '../../gpu/context';
import {
  requireHook,
  type AttentionCall,
  type AttentionOp,
  type LayerCache,
  type LayerState,
} from '../../methods/inModel';
import { getMethod, methodsFor } from '../../methods/registry';
import {
  resolveParams,
  type MethodParams,
  type Phase,
  type SparseMethod,
} from '../../methods/types';

export type {
  AttentionCall,
  AttentionCount,
  AttentionOp,
  KvRows,
  LayerCache,
  LayerState,
} from '../../methods/inModel';

export type AttentionPhase = Phase;

/** A method: its registry name alone (default parameters), or its name and parameters. */
export type AttentionMethod = string | { name: string; params?: Partial<MethodParams> };

/** A method with every parameter filled in. */
export interface ResolvedMethod {
  name: string;
  params: MethodParams;
}

export interface LayerAttentionOverride {
  prefill?: AttentionMethod;
  decode?: AttentionMethod;
}

export interface AttentionOptions {
  /** Method for every layer's prefill (default 'dense'). */
  prefill?: AttentionMethod;
  /** Method for every layer's decode (default 'dense'). */
  decode?: AttentionMethod;
  /** Per-layer overrides; entry i (if present) replaces the defaults for layer i. */
  layers?: readonly (LayerAttentionOverride | null | undefined)[];
}

/** Resolved per-layer methods. */
export interface AttentionPlan {
  prefill: ResolvedMethod[];
  decode: ResolvedMethod[];
}

const namesFor = (phase: Phase) =>
  methodsFor(phase)
    .map((m) => m.name)
    .join(', ');

function lookUp(phase: Phase, name: string, where: string): SparseMethod {
  let method: SparseMethod;
  try {
    method = getMethod(name);
  } catch {
    throw new Error(
      `unknown ${phase} attention method '${name}'${where} (available: ${namesFor(phase)})`,
    );
  }
  if (!method.phases.includes(phase)) {
    throw new Error(
      `${phase} attention method '${name}'${where} is a ${method.phases.join(' and ')} method ` +
        `(available for ${phase}: ${namesFor(phase)})`,
    );
  }
  return method;
}

/** Validates a method for a phase through the registry and fills in its default parameters. */
export function resolveMethod(
  phase: AttentionPhase,
  method: AttentionMethod,
  where = '',
): ResolvedMethod {
  const name = typeof method === 'string' ? method : method.name;
  const given = typeof method === 'string' ? {} : (method.params ?? {});
  const found = lookUp(phase, name, where);
  try {
    return { name, params: resolveParams(found.params, given) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${phase} method '${name}'${where}: ${message}`, { cause: error });
  }
}

export function resolveAttention(options: AttentionOptions = {}, numLayers: number): AttentionPlan {
  const layers = options.layers ?? [];
  if (layers.length > numLayers) {
    throw new Error(`attention overrides name ${layers.length} layers, the model has ${numLayers}`);
  }
  const plan: AttentionPlan = { prefill: [], decode: [] };
  for (let i = 0; i < numLayers; i++) {
    const where = layers[i] ? ` for layer ${i}` : '';
    plan.prefill.push(
      resolveMethod('prefill', layers[i]?.prefill ?? options.prefill ?? 'dense', where),
    );
    plan.decode.push(
      resolveMethod('decode', layers[i]?.decode ?? options.decode ?? 'dense', where),
    );
  }
  return plan;
}

/** The method's per-layer state for a phase (Quest's summaries, SnapKV's cache), if it has one. */
export function createLayerState(
  ctx: GpuContext,
  phase: AttentionPhase,
  method: ResolvedMethod,
  cache: LayerCache,
): LayerState | undefined {
  return getMethod(method.name).inModel.createLayerState?.(ctx, cache, method.params, phase);
}

/** How a layer builds its attention in a step: the method's in-model hook, with its parameters. */
export type LayerAttention = (ctx: GpuContext, call: AttentionCall) => AttentionOp;

/**
 * A resolved method's in-model hook for a phase, looked up once: the model builds every layer's
 * attention in every step, and resolving the method there was a share of a decode token's CPU time.
 */
export function layerAttention(phase: AttentionPhase, method: ResolvedMethod): LayerAttention {
  const hook = requireHook(getMethod(method.name).inModel[phase], method.name, phase);
  return (ctx, call) => hook(ctx, method.params, call);
}

function attention(
  phase: AttentionPhase,
  ctx: GpuContext,
  method: AttentionMethod | ResolvedMethod,
  call: AttentionCall,
): AttentionOp {
  return layerAttention(phase, resolveMethod(phase, method, ` for layer ${call.layer}`))(ctx, call);
}

/** Causal attention of numQueries new tokens over the cache (their own K/V already written). */
export function prefillAttention(
  ctx: GpuContext,
  method: AttentionMethod | ResolvedMethod,
  call: AttentionCall,
): AttentionOp {
  return attention('prefill', ctx, method, call);
}

/** One query per head at position qStart over keys 0 .. qStart. */
export function decodeAttention(
  ctx: GpuContext,
  method: AttentionMethod | ResolvedMethod,
  call: AttentionCall,
): AttentionOp {
  return attention('decode', ctx, method, call);
}
