/** Block-Sparse (MInference's block_sparse_attention): top-k key blocks per query block. */
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
};
