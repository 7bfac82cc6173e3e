/** Ada-SnapKV (decode): SnapKV with the budget shared adaptively across KV heads. */
import { adaSnapKV, ADA_SNAPKV_DEFAULTS } from './reference/adaSnapKV';
import {
  capacityForSparsity,
  evictionInModel,
  evictionReference,
  runEviction,
  snapKVParamSpecs,
  snapKVTyped,
} from './snapKV';
import {
  checkSparsity,
  numberParam,
  resolveParams,
  shapeLength,
  type ParamSpec,
  type SparseMethod,
} from './types';

const params: readonly ParamSpec[] = [
  ...snapKVParamSpecs,
  {
    key: 'minRatio',
    label: 'Minimum share',
    kind: 'float',
    min: 0,
    max: 1,
    step: 0.05,
    default: ADA_SNAPKV_DEFAULTS.minRatio,
    description: 'Each KV head first gets at least minRatio * capacity tokens.',
  },
];

export const adaSnapKVMethod: SparseMethod = {
  name: 'ada_snapkv',
  label: 'Ada-SnapKV',
  description:
    'SnapKV scoring with the maximum over the window and the group\u2019s heads; the total budget ' +
    'capacity x KV heads is shared: each head gets minRatio * capacity, the rest goes to the ' +
    'highest scores of all heads.',
  citation:
    'Feng et al., Ada-KV: Optimizing KV Cache Eviction by Adaptive Budget Allocation (2024)',
  phases: ['decode'],
  params,
  sparsityMapping:
    'Nominal: average capacity = (1 - s) * length, at least localWindow + prefixTokens (132).',
  paramsForSparsity(s, shape) {
    checkSparsity(s);
    return resolveParams(params, { capacity: capacityForSparsity(s, shapeLength(shape)) });
  },
  reference(input, p) {
    const resolved = resolveParams(params, p);
    const typed = { ...snapKVTyped(resolved), minRatio: numberParam(resolved, 'minRatio') };
    return evictionReference(input, (obs) => adaSnapKV(obs, typed));
  },
  planner: 'gpu',
  inModel: evictionInModel('ada_snapkv', (p) => ({
    ...snapKVTyped(p),
    minRatio: numberParam(p, 'minRatio'),
    mode: 'ada',
  })),
  run(ctx, input, p) {
    const resolved = resolveParams(params, p);
    return runEviction(ctx, input, {
      ...snapKVTyped(resolved),
      minRatio: numberParam(resolved, 'minRatio'),
      mode: 'ada',
    });
  },
};
