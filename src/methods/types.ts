/**
 * One interface for every sparse attention method: the UI, the CLI, the evaluation engine and the
 * tests read methods only through `SparseMethod` and the registry (registry.ts), never through a
 * method's module directly.
 *
 * A method is one module, src/methods/<method>.ts, exporting one `SparseMethod`:
 *
 * - Identity: `name` (the snake_case id the CLI and saved configurations use), `label` (for the UI),
 *   `description`, `citation` (the paper) and the `phases` it applies to. Prefill methods get the
 *   whole prompt at once (numQueries rows); decode methods get one query (numQueries = 1,
 *   qStart = kvLen - 1). Methods listed for both phases treat numQueries = 1 as decode.
 *
 * - Parameters: `params` lists every knob as a `ParamSpec` (kind int | float | choice | bool, plus
 *   'code' for user_pattern's mask_mod source), whose `default` is the paper's default. Values
 *   travel as a plain `MethodParams` record keyed by `ParamSpec.key`; `resolveParams` fills in
 *   defaults and validates kinds, ranges and choices. At most one param carries `sparsityKnob`,
 *   the direction in which its value moves as the target sparsity grows ('increasing', e.g. a
 *   threshold, or 'decreasing', e.g. a budget).
 *
 * - `paramsForSparsity(s, shape)`: the method's params for a target sparsity s in [0, 0.95] on a
 *   given attention shape. Every method answers. Budgeted methods solve for the budget whose
 *   nominal (or exact, position-only) sparsity is closest to s; adaptive methods (FlexPrefill's
 *   alpha, BLASST's lambda) use a documented monotone mapping of their threshold, so the sparsity
 *   they reach depends on the data: always read the measured sparsity. `sparsityMapping` says
 *   which, in words, for the UI. s = 0 always gives "keep everything" params.
 *
 * - `reference(input, params)`: the method's float64 CPU reference (src/methods/reference/) on the
 *   given q/k/v. It returns the output, what was kept (a BlockMask for prefill methods, kept token
 *   or page indices per KV head for decode methods), the token-level BlockMask in every case,
 *   `measuredSparsity` (masks.ts's count: 1 - kept causal interactions / causal total), `recall`
 *   (the dense softmax mass the kept keys carry, mean over queries and heads) and `units`: the
 *   same selection counted at the granularity the GPU kernel counts (key blocks, pages or tokens).
 *
 * - `run(ctx, input, params)` (optional): the method on the GPU through the existing kernels,
 *   returning the f32 output and kernel statistics. `planner` says where the selection is planned:
 *   'cpu' means the CPU reference builds the block mask and only the attention runs on the GPU
 *   (block_sparse, vertical_slash, flexprefill, sliding_window, user_pattern in `run`; inside the
 *   model block_sparse, vertical_slash and flexprefill plan on the GPU, see `inModel`); 'gpu' means
 *   kernels select too (quest, snapkv, ada_snapkv); 'none' means nothing is planned ahead (dense;
 *   BLASST decides inside the softmax loop). A method without a GPU path leaves `run` absent and
 *   says why in `runUnavailable` (shown by the UI).
 *
 * - `inModel`: the method inside the model's forward pass (src/model/runtime/model.ts), on the
 *   model's own buffers. Every method has the hook of each of its phases (inModel.ts describes the
 *   interface): `prefill` / `decode` build the layer's attention op from the resolved params; an
 *   optional `createLayerState` keeps what the method needs next to the layer's KV cache (Quest's
 *   page summaries, SnapKV's compacted cache) and is told of KV writes, prefill attention and the
 *   end of each step. The runtime (src/model/runtime/attention.ts) only resolves names and params
 *   through the registry and calls these hooks, so adding a method is one module here and one
 *   line in registry.ts; the CLI, the engine and the tests pick it up from the registry.
 *
 * Statistics counted "by the kernel" are the kernel's own counts (key blocks processed, pages
 * read); `stats.measuredSparsity` is 1 - touched / total in those units, so it equals the
 * reference's `units` sparsity exactly, while `MethodReference.measuredSparsity` is token-level.
 */
import type { GpuContext } from '../gpu/context';
import type { ReferenceInput } from '../kernels/attention.reference';
import { blockSparsePrefillOnHost } from '../kernels/blockSparsePrefill';
import {
  denseDecodeOnHost,
  tokensReadPerKvHead,
  type DecodeTokenSubset,
} from '../kernels/denseDecode';
import type { AttentionShape, KvDtype, PagedKvLayout } from '../kernels/layout';
import type { InModelAttention } from './inModel';
import { blockCounts, measuredSparsity, type BlockMask } from './reference/masks';
import { sparseAttention } from './reference/sparseAttention';

export type Phase = 'prefill' | 'decode';

export type MethodName =
  | 'dense'
  | 'vertical_slash'
  | 'flexprefill'
  | 'block_sparse'
  | 'blasst'
  | 'sliding_window'
  | 'quest'
  | 'snapkv'
  | 'ada_snapkv'
  | 'user_pattern';

export type ParamKind = 'int' | 'float' | 'choice' | 'bool' | 'code';
export type ParamValue = number | string | boolean;
export type MethodParams = Record<string, ParamValue>;

export interface ParamSpec {
  key: string;
  label: string;
  kind: ParamKind;
  /** int and float: inclusive range and UI step. */
  min?: number;
  max?: number;
  step?: number;
  /** choice: the allowed values. */
  options?: readonly (number | string)[];
  /** The paper's default (or ours, said in the description, where the paper has none). */
  default: ParamValue;
  description: string;
  /** Set on the one param that targets sparsity: how its value moves as sparsity grows. */
  sparsityKnob?: 'increasing' | 'decreasing';
}

/** The attention shape a method plans for: query rows at absolute positions qStart + i. */
export interface MethodShape extends AttentionShape {
  numQueries: number;
  qStart: number;
}

/** Keys (and the prefill length, or decode cache length) of a shape. */
export function shapeLength(shape: Pick<MethodShape, 'numQueries' | 'qStart'>): number {
  return shape.qStart + shape.numQueries;
}

/**
 * Reference input (layouts of layout.ts, K/V contiguous token x kvHead x dim). Decode methods take
 * one query (numQueries = 1, qStart = kvLen - 1). `observation` (SnapKV, Ada-SnapKV) is the prompt
 * whose last queries score the keys before eviction: its keys must be the first keys of `input`;
 * without it the decode query itself is the observation window.
 */
export interface MethodInput extends ReferenceInput {
  observation?: ReferenceInput;
}

/** What a method kept, in its own unit. */
export type KeptSet =
  | { kind: 'blocks'; mask: BlockMask }
  | { kind: 'pages'; pageSize: number; perKvHead: number[][] }
  | { kind: 'tokens'; perKvHead: number[][] };

export type CountUnit = 'block' | 'page' | 'token';

export interface UnitCounts {
  unit: CountUnit;
  /** Units read or computed, over all heads (query heads for blocks, KV heads for pages/tokens). */
  touched: number;
  /** What dense attention touches in the same units. */
  total: number;
}

export interface MethodReference {
  /** out[query][head][dim] in float64. */
  output: Float64Array;
  kept: KeptSet;
  /** The token-level keep decision, whatever the method's unit. */
  mask: BlockMask;
  /** masks.ts measuredSparsity(mask): token-level. */
  measuredSparsity: number;
  /** Mean attention recall over queries and heads. */
  recall: number;
  /** The selection counted in the GPU kernel's units. */
  units: UnitCounts;
}

export interface MethodGpuInput extends MethodInput {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** Paged KV cache format for the kernels; f32 and 16-token pages when absent. */
  kvDtype?: KvDtype;
  pageSize?: number;
}

/** The paged KV cache a GPU run packs its input into (f32 and 16-token pages by default). */
export function gpuKvLayout(input: MethodGpuInput): PagedKvLayout {
  return {
    pageSize: input.pageSize ?? 16,
    numKvHeads: input.numKvHeads,
    headDim: input.headDim,
    dtype: input.kvDtype ?? 'f32',
  };
}

export interface MethodGpuStats {
  /** 1 - touched / total, in the kernel's units. */
  measuredSparsity: number;
  blocksOrPagesTouched: number;
  total: number;
  unit: CountUnit;
  /** 'kernel': counted by the kernel; 'shape': the kernel does not count (dense: everything). */
  countedBy: 'kernel' | 'shape';
  /** Milliseconds the CPU planner took (planner 'cpu'). */
  plannerMs?: number;
  /** Wall milliseconds of the GPU round trip: upload, kernels and read back. */
  kernelMs?: number;
}

export interface MethodGpuResult {
  /** out[query][head][dim] */
  out: Float32Array;
  stats: MethodGpuStats;
}

export type MethodRunner = (
  ctx: GpuContext,
  input: MethodGpuInput,
  params?: Partial<MethodParams>,
) => Promise<MethodGpuResult>;

export interface SparseMethod {
  name: MethodName;
  label: string;
  description: string;
  citation: string;
  phases: readonly Phase[];
  params: readonly ParamSpec[];
  /** How paramsForSparsity maps s to the knob, in words. */
  sparsityMapping: string;
  paramsForSparsity(s: number, shape: MethodShape): MethodParams;
  reference(input: MethodInput, params?: Partial<MethodParams>): MethodReference;
  planner: 'cpu' | 'gpu' | 'none';
  run?: MethodRunner;
  /** The method inside the model's forward pass: a hook for each of its phases. */
  inModel: InModelAttention;
  /** Why `run` is absent. */
  runUnavailable?: string;
}

/** Largest target sparsity the sweeps ask for. */
export const MAX_SPARSITY = 0.95;

export function checkSparsity(s: number): void {
  if (!(s >= 0 && s <= MAX_SPARSITY)) {
    throw new Error(`target sparsity must be in [0, ${MAX_SPARSITY}], got ${s}`);
  }
}

/** Defaults filled in, unknown keys rejected, kinds, ranges and choices checked. */
export function resolveParams(
  specs: readonly ParamSpec[],
  params: Partial<MethodParams> = {},
): MethodParams {
  const known = new Set(specs.map((p) => p.key));
  for (const key of Object.keys(params)) {
    if (!known.has(key)) {
      throw new Error(`unknown parameter "${key}" (known: ${[...known].join(', ') || 'none'})`);
    }
  }
  const out: MethodParams = {};
  for (const spec of specs) {
    const value = params[spec.key] ?? spec.default;
    checkParam(spec, value);
    out[spec.key] = value;
  }
  return out;
}

export function checkParam(spec: ParamSpec, value: ParamValue): void {
  const fail = (why: string) => {
    throw new Error(`parameter ${spec.key} = ${JSON.stringify(value)}: ${why}`);
  };
  switch (spec.kind) {
    case 'int':
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) fail('not a finite number');
      if (spec.kind === 'int' && !Number.isInteger(value)) fail('not an integer');
      if (spec.min !== undefined && (value as number) < spec.min) fail(`below ${spec.min}`);
      if (spec.max !== undefined && (value as number) > spec.max) fail(`above ${spec.max}`);
      break;
    case 'choice':
      if (!spec.options?.includes(value as number | string)) {
        fail(`not one of ${spec.options?.join(', ')}`);
      }
      break;
    case 'bool':
      if (typeof value !== 'boolean') fail('not a boolean');
      break;
    case 'code':
      if (typeof value !== 'string') fail('not a string');
      break;
  }
}

export function numberParam(params: MethodParams, key: string): number {
  const value = params[key];
  if (typeof value !== 'number') throw new Error(`parameter ${key} is not a number`);
  return value;
}

export function stringParam(params: MethodParams, key: string): string {
  const value = params[key];
  if (typeof value !== 'string') throw new Error(`parameter ${key} is not a string`);
  return value;
}

export function meanOf(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return values.length > 0 ? sum / values.length : 1;
}

export function unitSparsity(units: UnitCounts): number {
  return units.total > 0 ? 1 - units.touched / units.total : 0;
}

export function blockUnits(mask: BlockMask): UnitCounts {
  const counts = blockCounts(mask);
  return { unit: 'block', touched: counts.touched, total: counts.causal };
}

/** The reference of a method whose selection is a block mask: sparseAttention on it. */
export function referenceFromMask(input: ReferenceInput, mask: BlockMask): MethodReference {
  const { out, recall } = sparseAttention(input, mask);
  return {
    output: out,
    kept: { kind: 'blocks', mask },
    mask,
    measuredSparsity: measuredSparsity(mask),
    recall: meanOf(recall),
    units: blockUnits(mask),
  };
}

export function requireDecode(input: ReferenceInput, method: string): void {
  if (input.numQueries !== 1) {
    throw new Error(`${method} is a decode method: it takes exactly one query`);
  }
}

/**
 * GPU path of the methods planned on the CPU: plan the mask (timed), run blockSparsePrefill on it,
 * report the key blocks the kernel counted. The kernel takes 16- or 64-wide blocks.
 */
export async function runPlannedMask(
  ctx: GpuContext,
  input: MethodGpuInput,
  plan: () => BlockMask,
): Promise<MethodGpuResult> {
  const planStart = performance.now();
  const mask = plan();
  const plannerMs = performance.now() - planStart;
  const kernelStart = performance.now();
  const { out, blockCounts: counts } = await blockSparsePrefillOnHost(
    ctx,
    {
      ...input,
      kv: gpuKvLayout(input),
    },
    mask,
  );
  const kernelMs = performance.now() - kernelStart;
  const touched = counts.reduce((n, c) => n + c, 0);
  const total = blockCounts(mask).causal;
  return {
    out,
    stats: {
      measuredSparsity: total > 0 ? 1 - touched / total : 0,
      blocksOrPagesTouched: touched,
      total,
      unit: 'block',
      countedBy: 'kernel',
      plannerMs,
      kernelMs,
    },
  };
}

/**
 * GPU path of the decode methods that read part of the cache through dense decode (sliding
 * window, user patterns): plan the subset (timed), run it, report the tokens it reads.
 */
export async function runDecodeSubset(
  ctx: GpuContext,
  input: MethodGpuInput,
  plan: (kvLen: number) => DecodeTokenSubset,
): Promise<MethodGpuResult> {
  const kvLen = input.qStart + 1;
  const planStart = performance.now();
  const subset = plan(kvLen);
  const plannerMs = performance.now() - planStart;
  const kernelStart = performance.now();
  const out = await denseDecodeOnHost(ctx, { ...input, kv: gpuKvLayout(input), kvLen, ...subset });
  const kernelMs = performance.now() - kernelStart;
  const touched = tokensReadPerKvHead(kvLen, input.numKvHeads, subset).reduce((a, b) => a + b, 0);
  const total = kvLen * input.numKvHeads;
  return {
    out,
    stats: {
      measuredSparsity: 1 - touched / total,
      blocksOrPagesTouched: touched,
      total,
      unit: 'token',
      countedBy: 'shape',
      plannerMs,
      kernelMs,
    },
  };
}
