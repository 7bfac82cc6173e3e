/** Sliding window + attention sinks (StreamingLLM): position-only selection. */
import { blockSparseOp, maskShapeOf } from './inModel';
import { causalTotal, type MaskShape } from './reference/masks';
import { closestOnDecreasing } from './reference/select';
import { keptCount, slidingWindow, SLIDING_WINDOW_DEFAULTS } from './reference/slidingWindow';
import {
  checkSparsity,
  numberParam,
  referenceFromMask,
  resolveParams,
  runPlannedMask,
  shapeLength,
  type MethodParams,
  type MethodShape,
  type ParamSpec,
  type SparseMethod,
} from './types';

const D = SLIDING_WINDOW_DEFAULTS;

const params: readonly ParamSpec[] = [
  {
    key: 'window',
    label: 'Window',
    kind: 'int',
    min: 1,
    max: 1 << 20,
    step: 1,
    default: D.window,
    description: 'Most recent keys each query keeps, itself included: the budget knob.',
    sparsityKnob: 'decreasing',
  },
  {
    key: 'sinks',
    label: 'Sink tokens',
    kind: 'int',
    min: 0,
    max: 1 << 20,
    step: 1,
    default: D.sinks,
    description: 'First keys always kept (attention sinks).',
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

/**
 * The window whose exact sparsity on this shape is closest to s (position-only, so exact for any
 * qStart, decode included).
 */
export function windowForSparsity(s: number, shape: MethodShape, sinks: number): number {
  const oneHead = { numHeads: 1, numQueries: shape.numQueries, qStart: shape.qStart };
  const total = causalTotal(oneHead);
  return closestOnDecreasing(
    1,
    Math.max(1, shapeLength(shape)),
    s,
    (w) => 1 - keptCount(oneHead, w, sinks) / total,
  );
}

function plan(input: MaskShape, p?: Partial<MethodParams>) {
  const resolved = resolveParams(params, p);
  const block = numberParam(resolved, 'block');
  const { numHeads, numQueries, qStart } = input;
  return slidingWindow(
    { numHeads, numQueries, qStart },
    {
      window: numberParam(resolved, 'window'),
      sinks: numberParam(resolved, 'sinks'),
      blockQ: block,
      blockK: block,
    },
  );
}

export const slidingWindowMethod: SparseMethod = {
  name: 'sliding_window',
  label: 'Sliding window + sinks',
  description:
    'StreamingLLM: each query keeps the most recent `window` keys and the first `sinks` keys. ' +
    'Position only, no scoring; in decode it reads window + sinks tokens.',
  citation: 'Xiao et al., Efficient Streaming Language Models with Attention Sinks (ICLR 2024)',
  phases: ['prefill', 'decode'],
  params,
  sparsityMapping: 'Exact: the window whose token-level sparsity on this shape is closest to s.',
  paramsForSparsity(s, shape) {
    checkSparsity(s);
    return resolveParams(params, { window: windowForSparsity(s, shape, D.sinks) });
  },
  reference: (input, p) => referenceFromMask(input, plan(input, p)),
  planner: 'cpu',
  run: (ctx, input, p) => runPlannedMask(ctx, input, () => plan(input, p)),
  inModel: {
    prefill: (ctx, p, call) => blockSparseOp(ctx, call, () => plan(maskShapeOf(call), p)),
    decode: (ctx, p, call) => blockSparseOp(ctx, call, () => plan(maskShapeOf(call), p)),
  },
};
