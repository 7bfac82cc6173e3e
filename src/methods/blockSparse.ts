/** Block-Sparse (MInference's block_sparse_attention): top-k key blocks per query block. */
import { blockSparseMaskFromRows, planBlockSparseOnGpu } from '../kernels/planners';
import {
  attentionBuffers,
  blockSparseOp,
  maskShapeOf,
  prefillParams,
  readU32,
  type InModelAttention,
} from './inModel';
import {
  blockSparse,
  BLOCK_SPARSE_DEFAULTS,
  paramsForSparsity as referenceParamsForSparsity,
} from './reference/blockSparse';
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

const params: readonly ParamSpec[] = [
  {
    key: 'topChunks',
    label: 'Key blocks per query block',
    kind: 'int',
    min: 3,
    max: 1 << 20,
    step: 1,
    default: BLOCK_SPARSE_DEFAULTS.topChunks,
    description:
      'Key blocks each query block keeps (first, diagonal and previous blocks included): the ' +
      'budget knob.',
    sparsityKnob: 'decreasing',
  },
  {
    key: 'chunkSize',
    label: 'Block size',
    kind: 'choice',
    options: [16, 64],
    default: BLOCK_SPARSE_DEFAULTS.chunkSize,
    description: 'Tokens per query and key block (16 was best in the paper\u2019s ablation).',
  },
];

function plan(input: MethodInput, p?: Partial<MethodParams>) {
  const resolved = resolveParams(params, p);
  return blockSparse(input, {
    chunkSize: numberParam(resolved, 'chunkSize'),
    topChunks: numberParam(resolved, 'topChunks'),
  }).mask;
}

/**
 * In the model: the GPU planner (planners.ts) on the chunk's q and the layer's K pool, its rows
 * packed into the kernel's mask on the GPU, then the block-sparse kernel. A chunk must start on a
 * block boundary.
 */
const inModel: InModelAttention = {
  prefill(ctx, p, call) {
    const chunkSize = numberParam(p, 'chunkSize');
    if (call.qStart % chunkSize !== 0) {
      throw new Error(
        `prefill method 'block_sparse' for layer ${call.layer}: the chunk starts at ` +
          `${call.qStart}, not a multiple of chunkSize ${chunkSize} (use a prefillChunk that is ` +
          'a multiple of it)',
      );
    }
    const gpuPlan = planBlockSparseOnGpu(ctx, prefillParams(call), attentionBuffers(call), {
      topChunks: numberParam(p, 'topChunks'),
      blockSize: chunkSize,
    });
    const { rows, rowLength, rowStride, numQueryBlocks } = gpuPlan.outputs;
    const rowCount = call.shape.numHeads * numQueryBlocks;
    const shape = maskShapeOf(call);
    return blockSparseOp(ctx, call, {
      record: gpuPlan.record,
      source: { kind: 'rows', plan: gpuPlan.outputs, blockSize: chunkSize },
      destroy: gpuPlan.destroy,
      mask: async () => {
        const [rowWords, lengths] = await Promise.all([
          readU32(ctx, rows, rowCount * rowStride),
          readU32(ctx, rowLength, rowCount),
        ]);
        return blockSparseMaskFromRows(shape, chunkSize, rowWords, lengths, rowStride);
      },
    });
  },
};

export const blockSparseMethod: SparseMethod = {
  name: 'block_sparse',
  label: 'Block-Sparse',
  description:
    'Q and K mean-pooled per block; a key block scores pooled q . pooled k (no softmax) and each ' +
    'query block keeps its top key blocks, the first, diagonal and previous blocks always. ' +
    'Chosen per query head. Needs qStart to be a multiple of the block size.',
  citation:
    'Jiang et al., MInference 1.0 (NeurIPS 2024); Nawrot et al., The Sparse Frontier (2025)',
  phases: ['prefill'],
  params,
  sparsityMapping:
    'Nominal: topChunks whose block-level sparsity on the prefill length (16-token blocks) is ' +
    'closest to s, the paper\u2019s search.',
  paramsForSparsity(s, shape) {
    checkSparsity(s);
    const ref = referenceParamsForSparsity(s, shapeLength(shape));
    return resolveParams(params, { topChunks: ref.topChunks, chunkSize: ref.chunkSize });
  },
  reference: (input, p) => referenceFromMask(input, plan(input, p)),
  planner: 'cpu',
  run: (ctx, input, p) => runPlannedMask(ctx, input, () => plan(input, p)),
  inModel,
};
