/** FlexPrefill: vertical-slash with per-head budgets from a coverage threshold alpha. */
import { verticalSlashPlanOp } from './inModel';
import {
  flexPrefill,
  FLEX_PREFILL_DEFAULTS,
  type FlexPrefillParams,
} from './reference/flexPrefill';
import {
  checkSparsity,
  MAX_SPARSITY,
  numberParam,
  referenceFromMask,
  resolveParams,
  runPlannedMask,
  type MethodInput,
  type MethodParams,
  type ParamSpec,
  type SparseMethod,
} from './types';

const D = FLEX_PREFILL_DEFAULTS;

/** alpha at the largest target sparsity; the paper's grid is 0.55 - 0.88. */
export const FLEX_PREFILL_MIN_ALPHA = 0.5;

/**
 * The documented monotone mapping: alpha falls linearly from 1 (cover all the mass: dense) at s = 0
 * to FLEX_PREFILL_MIN_ALPHA at s = 0.95. The sparsity reached depends on the data.
 */
export function alphaForSparsity(s: number): number {
  return 1 - (s / MAX_SPARSITY) * (1 - FLEX_PREFILL_MIN_ALPHA);
}

const params: readonly ParamSpec[] = [
  {
    key: 'alpha',
    label: 'Coverage alpha',
    kind: 'float',
    min: 0,
    max: 1,
    step: 0.01,
    default: D.alpha,
    description:
      'Share of the normalised column (and diagonal) score each head must cover: the fewest ' +
      'columns/diagonals whose sorted cumulative score reaches alpha are kept.',
    sparsityKnob: 'decreasing',
  },
  {
    key: 'minBudget',
    label: 'Minimum budget',
    kind: 'int',
    min: 1,
    max: 1 << 20,
    step: 1,
    default: D.minBudget,
    description: 'At least this many columns and diagonals per head.',
  },
  {
    key: 'approximationSize',
    label: 'Estimation queries',
    kind: 'int',
    min: 1,
    max: 1 << 20,
    step: 1,
    default: D.approximationSize,
    description: 'Last queries whose softmax scores the columns and diagonals.',
  },
  {
    key: 'sinkColumns',
    label: 'Sink columns',
    kind: 'int',
    min: 0,
    max: 1 << 20,
    step: 1,
    default: D.sinkColumns,
    description: 'First key columns always kept.',
  },
  {
    key: 'localDiagonals',
    label: 'Local diagonals',
    kind: 'int',
    min: 0,
    max: 1 << 20,
    step: 1,
    default: D.localDiagonals,
    description: 'Most recent diagonals always kept.',
  },
  {
    key: 'block',
    label: 'Block size',
    kind: 'choice',
    options: [16, 64],
    default: D.blockQ,
    description: 'Query and key block of the block mask the GPU kernel walks.',
  },
];

function typed(p: MethodParams): FlexPrefillParams {
  const block = numberParam(p, 'block');
  return {
    alpha: numberParam(p, 'alpha'),
    minBudget: numberParam(p, 'minBudget'),
    approximationSize: numberParam(p, 'approximationSize'),
    sinkColumns: numberParam(p, 'sinkColumns'),
    localDiagonals: numberParam(p, 'localDiagonals'),
    blockQ: block,
    blockK: block,
  };
}

function plan(input: MethodInput, p?: Partial<MethodParams>) {
  return flexPrefill(input, typed(resolveParams(params, p))).mask;
}

export const flexPrefillMethod: SparseMethod = {
  name: 'flexprefill',
  label: 'FlexPrefill',
  description:
    'The vertical-slash pattern with adaptive per-head budgets: each head keeps the fewest ' +
    'columns and diagonals whose normalised scores cover alpha (at least minBudget). ' +
    'Query-aware mode off (tau = 0), as in the Sparse Frontier runs.',
  citation: 'Lai et al., FlexPrefill (ICLR 2025); Nawrot et al., The Sparse Frontier (2025)',
  phases: ['prefill'],
  params,
  sparsityMapping:
    'Monotone threshold: alpha = 1 - (s / 0.95) * 0.5, from 1 (dense) at s = 0 to 0.5 at ' +
    's = 0.95; the sparsity reached depends on the data and on minBudget.',
  paramsForSparsity(s) {
    checkSparsity(s);
    return resolveParams(params, { alpha: alphaForSparsity(s) });
  },
  reference: (input, p) => referenceFromMask(input, plan(input, p)),
  planner: 'cpu',
  run: (ctx, input, p) => runPlannedMask(ctx, input, () => plan(input, p)),
  inModel: {
    prefill(ctx, p, call) {
      const { approximationSize, ...rest } = typed(p);
      return verticalSlashPlanOp(ctx, 'flexprefill', call, {
        mode: 'flexprefill',
        approximation: approximationSize,
        ...rest,
      });
    },
  },
};
