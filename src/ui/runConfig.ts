/**
 * The configuration the run and sweep panels edit, its defaults and its validation. Everything
 * here is plain data (it travels in the URL, see shareState.ts) and checked against the method
 * and task registries, so a bad value is named with what to do instead of failing later.
 */
import type { SweepConfig } from '../engine/sweepTypes';
import { getMethod, methodsFor } from '../methods/registry';
import {
  MAX_SPARSITY,
  resolveParams,
  type MethodName,
  type MethodParams,
  type MethodShape,
  type Phase,
} from '../methods/types';
import { TASKS } from '../tasks/registry';

/** A method picked for one phase with its current params. */
export interface PhaseChoice {
  method: MethodName;
  params: MethodParams;
}

export interface RunConfig {
  /** A generated task sample, or the user's own text and question. */
  source: 'task' | 'custom';
  task: string;
  /** Target prompt length in tokens. */
  length: number;
  seed: number;
  customText: string;
  customQuestion: string;
  prefill: PhaseChoice;
  decode: PhaseChoice;
  /** The one sparsity slider: each phase's params come from its method's paramsForSparsity. */
  sparsity: number;
  maxNewTokens: number;
}

/**
 * Lengths offered in the pickers (the model's maximum positions cap what runs). 3584: every task
 * fits there with the embedded model's tokenizer (the story tasks need 3,072 to 3,328 tokens), so
 * its 4,096-token context still leaves two lengths to compare on all six.
 */
export const LENGTHS = [256, 512, 1024, 2048, 3584, 4096, 8192, 16384, 32768] as const;
/** The Sparse Frontier's sparsity grid. */
export const PAPER_SPARSITIES = [0, 0.33, 0.5, 0.6, 0.7, 0.8, 0.87, 0.9, 0.93, 0.95] as const;
export const MAX_NEW_TOKENS_LIMIT = 512;
export const MAX_SAMPLES = 200;

/** Attention dims used to turn a sparsity into params before a model is loaded. */
export const NOMINAL_DIMS = { numHeads: 4, numKvHeads: 4, headDim: 64 } as const;

export interface AttentionDims {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

/** The shape a phase's method plans for at a prompt length (decode: one query at the end). */
export function phaseShape(phase: Phase, length: number, dims: AttentionDims): MethodShape {
  return phase === 'prefill'
    ? { ...dims, numQueries: length, qStart: 0 }
    : { ...dims, numQueries: 1, qStart: Math.max(0, length - 1) };
}

/** A method's params at a target sparsity, keeping code params (a mask_mod source) as they are. */
export function paramsAtSparsity(
  phase: Phase,
  method: MethodName,
  sparsity: number,
  length: number,
  dims: AttentionDims,
  current: MethodParams = {},
): MethodParams {
  const spec = getMethod(method);
  const params = spec.paramsForSparsity(sparsity, phaseShape(phase, length, dims));
  for (const p of spec.params) {
    if (p.kind === 'code' && current[p.key] !== undefined) params[p.key] = current[p.key];
  }
  return params;
}

export function defaultRunConfig(): RunConfig {
  const length = 1024;
  const sparsity = 0.5;
  const prefill: MethodName = 'vertical_slash';
  const decode: MethodName = 'dense';
  return {
    source: 'task',
    task: TASKS[0].name,
    length,
    seed: 0,
    customText: '',
    customQuestion: '',
    prefill: {
      method: prefill,
      params: paramsAtSparsity('prefill', prefill, sparsity, length, NOMINAL_DIMS),
    },
    decode: {
      method: decode,
      params: paramsAtSparsity('decode', decode, sparsity, length, NOMINAL_DIMS),
    },
    sparsity,
    maxNewTokens: 48,
  };
}

/** Highest recall layer a link may name; the loaded model's own count is checked at the start. */
export const MAX_RECALL_LAYER = 255;

export function defaultSweepConfig(): SweepConfig {
  return {
    tasks: [TASKS[0].name],
    lengths: [1024],
    samples: 4,
    seed: 0,
    prefillMethods: ['vertical_slash', 'block_sparse'],
    decodeMethods: ['quest'],
    sparsities: [0, 0.5, 0.8, 0.9],
    maxNewTokens: 32,
  };
}

function fail(where: string, why: string): never {
  throw new Error(`${where}: ${why}`);
}

function checkInteger(where: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(where, `expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkSparsityValue(where: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_SPARSITY)) {
    fail(where, `expected a sparsity from 0 to ${MAX_SPARSITY}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkTask(where: string, value: unknown): string {
  if (typeof value !== 'string' || !TASKS.some((t) => t.name === value)) {
    fail(
      where,
      `unknown task ${JSON.stringify(value)} (known: ${TASKS.map((t) => t.name).join(', ')})`,
    );
  }
  return value;
}

function checkMethod(where: string, value: unknown, phase: Phase): MethodName {
  const names = methodsFor(phase).map((m) => m.name);
  if (typeof value !== 'string' || !names.includes(value as MethodName)) {
    fail(where, `${JSON.stringify(value)} is not a ${phase} method (known: ${names.join(', ')})`);
  }
  return value as MethodName;
}

/** Sweeps list sparse methods only: dense is their baseline and always runs. */
function checkSparseMethod(where: string, value: unknown, phase: Phase): MethodName {
  const method = checkMethod(where, value, phase);
  if (method === 'dense') fail(where, 'dense is the baseline and always runs; leave it out');
  return method;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkChoice(where: string, value: unknown, phase: Phase): PhaseChoice {
  if (!isRecord(value)) fail(where, 'expected { method, params }');
  const method = checkMethod(`${where}.method`, value.method, phase);
  const given = isRecord(value.params) ? (value.params as Partial<MethodParams>) : {};
  try {
    return { method, params: resolveParams(getMethod(method).params, given) };
  } catch (error) {
    return fail(`${where}.params`, error instanceof Error ? error.message : String(error));
  }
}

function checkString(where: string, value: unknown, maxLength: number): string {
  if (typeof value !== 'string') fail(where, 'expected text');
  if (value.length > maxLength) fail(where, `longer than ${maxLength} characters`);
  return value;
}

/** Longest custom text a run accepts (characters; the model's positions cap it further). */
export const MAX_CUSTOM_TEXT = 400_000;

/** Checks a run configuration from outside (a link); throws naming the first bad field. */
export function checkRunConfig(value: unknown): RunConfig {
  if (!isRecord(value)) fail('run', 'expected an object');
  const source = value.source;
  if (source !== 'task' && source !== 'custom') fail('run.source', 'expected "task" or "custom"');
  return {
    source,
    task: checkTask('run.task', value.task),
    length: checkInteger('run.length', value.length, 16, LENGTHS[LENGTHS.length - 1]),
    seed: checkInteger('run.seed', value.seed, 0, 2 ** 31 - 1),
    customText: checkString('run.customText', value.customText, MAX_CUSTOM_TEXT),
    customQuestion: checkString('run.customQuestion', value.customQuestion, 4000),
    prefill: checkChoice('run.prefill', value.prefill, 'prefill'),
    decode: checkChoice('run.decode', value.decode, 'decode'),
    sparsity: checkSparsityValue('run.sparsity', value.sparsity),
    maxNewTokens: checkInteger('run.maxNewTokens', value.maxNewTokens, 1, MAX_NEW_TOKENS_LIMIT),
  };
}

function checkList<T>(where: string, value: unknown, item: (where: string, v: unknown) => T): T[] {
  if (!Array.isArray(value)) fail(where, 'expected a list');
  return value.map((v, i) => item(`${where}[${i}]`, v));
}

/** Checks a sweep configuration (from a link or the form); throws naming the first bad field. */
export function checkSweepConfig(value: unknown): SweepConfig {
  if (!isRecord(value)) fail('sweep', 'expected an object');
  const config: SweepConfig = {
    tasks: checkList('sweep.tasks', value.tasks, checkTask),
    lengths: checkList('sweep.lengths', value.lengths, (w, v) =>
      checkInteger(w, v, 16, LENGTHS[LENGTHS.length - 1]),
    ),
    samples: checkInteger('sweep.samples', value.samples, 1, MAX_SAMPLES),
    seed: checkInteger('sweep.seed', value.seed ?? 0, 0, 2 ** 31 - 1),
    prefillMethods: checkList('sweep.prefillMethods', value.prefillMethods, (w, v) =>
      checkSparseMethod(w, v, 'prefill'),
    ),
    decodeMethods: checkList('sweep.decodeMethods', value.decodeMethods, (w, v) =>
      checkSparseMethod(w, v, 'decode'),
    ),
    sparsities: checkList('sweep.sparsities', value.sparsities, checkSparsityValue),
    maxNewTokens: checkInteger('sweep.maxNewTokens', value.maxNewTokens, 1, MAX_NEW_TOKENS_LIMIT),
  };
  // The loaded model's layer count is checked when the sweep starts (validateSweepConfig).
  if (value.recallLayer !== undefined) {
    config.recallLayer = checkInteger('sweep.recallLayer', value.recallLayer, 0, MAX_RECALL_LAYER);
  }
  return config;
}

/** What keeps a sweep from starting (nothing to run), in words; null when it can start. */
export function sweepProblem(config: SweepConfig): string | null {
  if (config.tasks.length === 0) return 'Pick at least one task.';
  if (config.lengths.length === 0) return 'Pick at least one length.';
  if (config.sparsities.length === 0) return 'Pick at least one sparsity.';
  if (config.prefillMethods.length + config.decodeMethods.length === 0) {
    return 'Pick at least one sparse method (dense always runs as the reference).';
  }
  return null;
}

/** Parses "0, 0.5, 0.9" into sparsities; throws naming the bad entry. */
export function parseSparsities(text: string): number[] {
  const parts = text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const values = parts.map((part) => {
    const value = Number(part);
    if (!(value >= 0 && value <= MAX_SPARSITY)) {
      throw new Error(`"${part}" is not a sparsity from 0 to ${MAX_SPARSITY}`);
    }
    return value;
  });
  return [...new Set(values)].sort((a, b) => a - b);
}
