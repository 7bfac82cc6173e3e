/** Vertical-Slash (MInference): key columns + diagonals picked from the last queries' softmax. */
import { verticalSlashPlanOp } from './inModel';
import {
  paramsForSparsity as referenceParamsForSparsity,
  verticalSlash,
  VERTICAL_SLASH_DEFAULTS,
  type VerticalSlashParams,
} from './reference/verticalSlash';
import {
  checkSparsity,
  numberParam,
  referenceFromMask,
  resolveParams,
  runPlannedMask,
  shapeLength,
  type MethodInput,
  type MethodParams,
  type ParamSpec,
  type SparseMethod,
} from './types';

const D = VERTICAL_SLASH_DEFAULTS;

const params: readonly ParamSpec[] = [
  {
    key: 'verticalSize',
    label: 'Vertical / slash size',
    kind: 'int',
    min: 1,
    max: 1 << 20,
    step: 1,
    default: D.verticalSize,
    description:
      'Key columns and diagonals kept per head (the paper uses equal sizes): the budget knob.',
    sparsityKnob: 'decreasing',
  },
  {
    key: 'lastQ',
    label: 'Estimation queries',
    kind: 'int',
    min: 1,
    max: 1 << 20,
    step: 1,
    default: D.lastQ,
    description:
      'Last queries whose softmax scores the columns and diagonals (512 for NIAH/story).',
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
    description: 'Query and key block of the block mask the GPU kernel walks (64 in MInference).',
  },
];

function typed(p: MethodParams): VerticalSlashParams {
  const size = numberParam(p, 'verticalSize');
  const block = numberParam(p, 'block');
  return {
    verticalSize: size,
    slashSize: size,
    lastQ: numberParam(p, 'lastQ'),
    sinkColumns: numberParam(p, 'sinkColumns'),
    localDiagonals: numberParam(p, 'localDiagonals'),
    blockQ: block,
    blockK: block,
  };
}

function plan(input: MethodInput, p?: Partial<MethodParams>) {
  return verticalSlash(input, typed(resolveParams(params, p))).mask;
}

export const verticalSlashMethod: SparseMethod = {
  name: 'vertical_slash',
  label: 'Vertical-Slash',
  description:
    'MInference: the softmax of the last queries against all keys scores key columns (verticals) ' +
    'and diagonals (slashes); each head keeps its top columns and diagonals, with the first 4 ' +
    'columns and the 64 most recent diagonals forced in. Chosen per query head.',
  citation:
    'Jiang et al., MInference 1.0 (NeurIPS 2024); Nawrot et al., The Sparse Frontier (2025)',
  phases: ['prefill'],
  params,
  sparsityMapping:
    'Nominal: the size n (verticals = slashes) whose nominal kept count on the prefill length is ' +
    'closest to s; the measured sparsity differs (sinks, overlaps, qStart).',
  paramsForSparsity(s, shape) {
    checkSparsity(s);
    const ref = referenceParamsForSparsity(s, shapeLength(shape));
    return resolveParams(params, { verticalSize: ref.verticalSize });
  },
  reference: (input, p) => referenceFromMask(input, plan(input, p)),
  planner: 'cpu',
  run: (ctx, input, p) => runPlannedMask(ctx, input, () => plan(input, p)),
  inModel: {
    prefill: (ctx, p, call) => verticalSlashPlanOp(ctx, 'vertical_slash', call, typed(p)),
  },
};
