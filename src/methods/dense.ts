/** Dense causal attention: the baseline every sparse method is compared against. */
import { denseDecodeOnHost } from '../kernels/denseDecode';
import { densePrefillOnHost } from '../kernels/densePrefill';
import { denseDecodeOp, densePrefillOp } from './inModel';
import { ceilDiv, denseMask, numKeysOf } from './reference/masks';
import {
  blockUnits,
  checkSparsity,
  gpuKvLayout,
  referenceFromMask,
  resolveParams,
  type MethodInput,
  type SparseMethod,
  type UnitCounts,
} from './types';

/** Dense decode reads every page of 16 tokens of every KV head; prefill every causal 64x64 block. */
const DECODE_PAGE = 16;
const PREFILL_BLOCK = 64;

function denseUnits(input: MethodInput, pageSize = DECODE_PAGE): UnitCounts | undefined {
  if (input.numQueries !== 1) return undefined;
  const pages = ceilDiv(numKeysOf(input), pageSize) * input.numKvHeads;
  return { unit: 'page', touched: pages, total: pages };
}

export const denseMethod: SparseMethod = {
  name: 'dense',
  label: 'Dense',
  description:
    'Full causal attention: FlashAttention-style tiled online softmax in prefill, split-K flash ' +
    'decoding over the paged cache in decode. Nothing is skipped.',
  citation:
    'Dao et al., FlashAttention (2022); baseline of Nawrot et al., The Sparse Frontier (2025)',
  phases: ['prefill', 'decode'],
  params: [],
  sparsityMapping: 'None: dense attention has no knob; every target sparsity gives sparsity 0.',
  paramsForSparsity(s) {
    checkSparsity(s);
    return {};
  },
  reference(input, params) {
    resolveParams([], params);
    const decode = input.numQueries === 1;
    const block = decode
      ? { blockQ: 1, blockK: DECODE_PAGE }
      : { blockQ: PREFILL_BLOCK, blockK: PREFILL_BLOCK };
    const { numHeads, numQueries, qStart } = input;
    const mask = denseMask({ numHeads, numQueries, qStart, ...block });
    const result = referenceFromMask(input, mask);
    const units = denseUnits(input);
    if (!units) return result;
    const pages = Array.from({ length: units.total / input.numKvHeads }, (_, p) => p);
    const perKvHead = Array.from({ length: input.numKvHeads }, () => [...pages]);
    return { ...result, kept: { kind: 'pages', pageSize: DECODE_PAGE, perKvHead }, units };
  },
  planner: 'none',
  inModel: {
    prefill: (ctx, _params, call) => densePrefillOp(ctx, call),
    decode: (ctx, _params, call) => denseDecodeOp(ctx, call),
  },
  async run(ctx, input, params) {
    resolveParams([], params);
    const kv = gpuKvLayout(input);
    const { pageSize } = kv;
    const start = performance.now();
    const decode = input.numQueries === 1;
    const out = decode
      ? await denseDecodeOnHost(ctx, { ...input, kv, kvLen: input.qStart + 1 })
      : await densePrefillOnHost(ctx, { ...input, kv });
    const kernelMs = performance.now() - start;
    const units =
      denseUnits(input, pageSize) ??
      blockUnits(
        denseMask({
          numHeads: input.numHeads,
          numQueries: input.numQueries,
          qStart: input.qStart,
          blockQ: PREFILL_BLOCK,
          blockK: PREFILL_BLOCK,
        }),
      );
    return {
      out,
      stats: {
        measuredSparsity: 0,
        blocksOrPagesTouched: units.touched,
        total: units.total,
        unit: units.unit,
        countedBy: 'shape',
        kernelMs,
      },
    };
  },
};
