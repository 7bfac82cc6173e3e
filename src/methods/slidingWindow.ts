/**
 * Sliding window + attention sinks (StreamingLLM): position-only selection. Prefill runs the
 * block-sparse kernel on the window's block mask; decode runs dense decode over the sinks and the
 * window only, skipping the keys between them (one query needs no blocks: its keys are two runs).
 */
import type { GpuContext } from '../gpu/context';
import type { DecodeTokenGap } from '../kernels/denseDecode';
import { blockSparseOp, denseDecodeOp, maskShapeOf, plannedOnce } from './inModel';
import { causalTotal, type MaskShape } from './reference/masks';
import { closestOnDecreasing } from './reference/select';
import {
  decodeGap,
  keptCount,
  slidingWindow,
  SLIDING_WINDOW_DEFAULTS,
} from './reference/slidingWindow';
import {
  checkSparsity,
  numberParam,
  referenceFromMask,
  resolveParams,
  runDecodeSubset,
  runPlannedMask,
  shapeLength,
  type MethodGpuInput,
  type MethodInput,
  type MethodParams,
  type MethodReference,
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
    description:
      'Query and key block of the block mask the prefill kernel walks (decode reads tokens).',
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

/** The keys a decode query skips, from the method's parameters. */
function gapOf(kvLen: number, p?: Partial<MethodParams>) {
  const resolved = resolveParams(params, p);
  return decodeGap(kvLen, numberParam(resolved, 'window'), numberParam(resolved, 'sinks'));
}

/** The block mask's reference; in decode, counted in tokens per KV head as the decode reads them. */
function reference(input: MethodInput, p?: Partial<MethodParams>): MethodReference {
  const result = referenceFromMask(input, plan(input, p));
  if (input.numQueries !== 1) return result;
  const kvLen = input.qStart + 1;
  const gap = gapOf(kvLen, p);
  const read = Array.from({ length: kvLen }, (_, t) => t).filter(
    (t) => t < gap.start || t >= gap.start + gap.length,
  );
  const heads = input.numKvHeads;
  return {
    ...result,
    kept: { kind: 'tokens', perKvHead: Array.from({ length: heads }, () => [...read]) },
    units: { unit: 'token', touched: read.length * heads, total: kvLen * heads },
  };
}

/** Decode on the GPU: dense decode over the sinks and the window. */
const runDecode = (ctx: GpuContext, input: MethodGpuInput, p?: Partial<MethodParams>) =>
  runDecodeSubset(ctx, input, (kvLen) => ({
    tokenGaps: Array<DecodeTokenGap>(input.numKvHeads).fill(gapOf(kvLen, p)),
  }));

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
  reference,
  planner: 'cpu',
  run: (ctx, input, p) =>
    input.numQueries === 1
      ? runDecode(ctx, input, p)
      : runPlannedMask(ctx, input, () => plan(input, p)),
  inModel: {
    prefill: (ctx, p, call) =>
      blockSparseOp(ctx, call, () =>
        plannedOnce('sliding_window', maskShapeOf(call), resolveParams(params, p), (shape) =>
          plan(shape, p),
        ),
      ),
    decode: (ctx, p, call) => {
      const gap = gapOf(call.qStart + 1, p);
      return denseDecodeOp(ctx, call, undefined, {
        tokenGaps: Array(call.shape.numKvHeads).fill(gap),
      });
    },
  },
};
