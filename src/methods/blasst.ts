/** BLASST: block skipping inside the online-softmax loop, by a threshold on the block max. */
import { createEmptyBuffer } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import {
  blasstDecodeOnHost,
  blasstPrefillCountsBytes,
  blasstPrefillOnHost,
  createBlasstDecode,
  blasstPrefillTileConfig,
  recordBlasstPrefill,
} from '../kernels/blasst';
import {
  attentionBuffers,
  countWords,
  decodeParams,
  layerCountsBuffer,
  prefillParams,
  sumOf,
  type AttentionCall,
  type AttentionCount,
  type AttentionOp,
} from './inModel';
import { blasst, BLASST_DEFAULTS, type BlasstOrder } from './reference/blasst';
import { measuredSparsity } from './reference/masks';
import {
  blockUnits,
  checkSparsity,
  gpuKvLayout,
  MAX_SPARSITY,
  meanOf,
  numberParam,
  resolveParams,
  stringParam,
  type MethodParams,
  type ParamSpec,
  type SparseMethod,
} from './types';

/** lambda spans 10^-BLASST_LOG_RANGE .. 1 over s in (0, 0.95]. */
export const BLASST_LOG_RANGE = 6;

/**
 * The documented monotone mapping: lambda = 0 (skip nothing) at s = 0, else
 * 10^(-6 (1 - s / 0.95)), rising from 1e-6 to 1 (skip every block whose max is below the running
 * max) at s = 0.95. The sparsity reached depends on the data.
 */
export function lambdaForSparsity(s: number): number {
  return s <= 0 ? 0 : 10 ** (-BLASST_LOG_RANGE * (1 - s / MAX_SPARSITY));
}

/** Our default threshold (the paper fits lambda = a / L per model, see lambdaForLength). */
export const BLASST_DEFAULT_LAMBDA = 1e-3;

const params: readonly ParamSpec[] = [
  {
    key: 'lambda',
    label: 'Threshold lambda',
    kind: 'float',
    min: 0,
    max: 1,
    step: 1e-4,
    default: BLASST_DEFAULT_LAMBDA,
    description:
      'Skip a key block for a row when exp(m_blk - m) < lambda. The paper calibrates ' +
      'lambda = a / L per model; 1e-3 is our default, not the paper\u2019s.',
    sparsityKnob: 'increasing',
  },
  {
    key: 'block',
    label: 'Block size',
    kind: 'choice',
    options: [16, 32, 64],
    default: BLASST_DEFAULTS.blockK,
    description: 'Query rows per row group (prefill) and keys per key block.',
  },
  {
    key: 'order',
    label: 'Visit order',
    kind: 'choice',
    options: ['natural', 'sink-recent-first'],
    default: BLASST_DEFAULTS.order,
    description:
      'natural: ascending key blocks; sink-recent-first: the diagonal block and block 0 first, ' +
      'so the running max is high early and more blocks are skipped.',
  },
];

/** The kernel's [skipped, kept] pairs per row, summed per head (`rowsPerHead` rows each). */
function skipCount(words: Uint32Array, heads: number): AttentionCount {
  const rowsPerHead = words.length / 2 / heads;
  const perHead = (first: number) =>
    Array.from({ length: heads }, (_, h) =>
      sumOf(words.subarray(h * rowsPerHead * 2, (h + 1) * rowsPerHead * 2), first, 2),
    );
  const kept = perHead(1);
  const skipped = perHead(0);
  const total = kept.map((k, h) => k + skipped[h]);
  return {
    unit: 'blocks',
    touched: sumOf(kept),
    total: sumOf(total),
    perHead: { touched: kept, total },
  };
}

function blasstOptions(p: MethodParams) {
  return { lambda: numberParam(p, 'lambda'), order: stringParam(p, 'order') as BlasstOrder };
}

/**
 * In the model: prefill is the dense kernel with skipping, whose blocks are its own tiles (counts
 * per query head and tile); decode skips blocks of `block` tokens, one decision per KV head.
 */
function prefillOp(ctx: GpuContext, p: MethodParams, call: AttentionCall): AttentionOp {
  const params = prefillParams(call);
  const config = blasstPrefillTileConfig(ctx, call.shape.headDim);
  const bytes = blasstPrefillCountsBytes(params, config);
  const counts = createEmptyBuffer(ctx.device, bytes, 'blasst prefill counts');
  const record = recordBlasstPrefill(
    ctx,
    params,
    { ...attentionBuffers(call), counts },
    blasstOptions(p),
    config,
  );
  const words = countWords(ctx, call, counts, bytes / 4);
  return {
    record,
    dispose: () => counts.destroy(),
    readCount: async () => skipCount(await words(), call.shape.numHeads),
  };
}

function decodeOp(ctx: GpuContext, p: MethodParams, call: AttentionCall): AttentionOp {
  const { numKvHeads } = call.shape;
  const owned: GPUBuffer[] = [];
  const counts = layerCountsBuffer(ctx, call, 'blasst decode counts', numKvHeads * 8, owned);
  const decode = createBlasstDecode(
    ctx,
    decodeParams(call),
    { ...attentionBuffers(call), counts },
    { ...blasstOptions(p), blockTokens: numberParam(p, 'block') },
    call.scratch,
  );
  const words = countWords(ctx, call, counts, numKvHeads * 2);
  return {
    record: decode.record,
    dispose: () => [...owned, ...decode.scratch].forEach((b) => b.destroy()),
    readCount: async () => skipCount(await words(), numKvHeads),
  };
}

export const blasstMethod: SparseMethod = {
  name: 'blasst',
  label: 'BLASST',
  description:
    'No selection ahead of time: inside the online-softmax loop, a key block is skipped (no exp, ' +
    'no row sum, no V load, no P.V) when every row of the group has exp(m_blk - m) < lambda. ' +
    'The decision is uniform over the rows of a workgroup. Decode uses one row per head.',
  citation:
    'BLASST: Dynamic BLocked Attention Sparsity via Softmax Thresholding (arXiv 2512.12087, 2025)',
  phases: ['prefill', 'decode'],
  params,
  sparsityMapping:
    'Monotone threshold: lambda = 0 at s = 0, else 10^(-6 (1 - s / 0.95)) (1e-6 .. 1); the ' +
    'sparsity reached depends on the data.',
  paramsForSparsity(s) {
    checkSparsity(s);
    return resolveParams(params, { lambda: lambdaForSparsity(s) });
  },
  reference(input, p) {
    const resolved = resolveParams(params, p);
    const block = numberParam(resolved, 'block');
    const result = blasst(input, {
      lambda: numberParam(resolved, 'lambda'),
      order: stringParam(resolved, 'order') as BlasstOrder,
      blockQ: input.numQueries === 1 ? 1 : block,
      blockK: block,
    });
    return {
      output: result.out,
      kept: { kind: 'blocks', mask: result.mask },
      mask: result.mask,
      measuredSparsity: measuredSparsity(result.mask),
      recall: meanOf(result.recall),
      units: blockUnits(result.mask),
    };
  },
  planner: 'none',
  inModel: { prefill: prefillOp, decode: decodeOp },
  /**
   * Prefill: the kernel's blocks are its own tiles (blasstPrefillTileConfig: queryTile rows x keyTile
   * keys per query head), not `block`; its counts equal the reference run with blockQ = queryTile,
   * blockK = keyTile. Decode: blocks of `block` tokens, one decision per KV head for its whole GQA
   * group (counts per KV head); equal to the reference when the group size is 1. Either way the
   * stats are the kernel's counters: 1 - kept / (kept + skipped) blocks.
   */
  async run(ctx, input, p) {
    const resolved = resolveParams(params, p);
    const options = {
      lambda: numberParam(resolved, 'lambda'),
      order: stringParam(resolved, 'order') as BlasstOrder,
    };
    const kv = gpuKvLayout(input);
    const start = performance.now();
    const result =
      input.numQueries === 1
        ? await blasstDecodeOnHost(
            ctx,
            { ...input, kvLen: input.qStart + 1, kv },
            { ...options, blockTokens: numberParam(resolved, 'block') },
          )
        : await blasstPrefillOnHost(ctx, { ...input, kv }, options);
    const kernelMs = performance.now() - start;
    const touched = result.kept.reduce((n, c) => n + c, 0);
    const total = touched + result.skipped.reduce((n, c) => n + c, 0);
    return {
      out: result.out,
      stats: {
        measuredSparsity: total > 0 ? 1 - touched / total : 0,
        blocksOrPagesTouched: touched,
        total,
        unit: 'block',
        countedBy: 'kernel',
        kernelMs,
      },
    };
  },
};
