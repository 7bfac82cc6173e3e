/** Quest (decode): top-K pages by an upper bound of q.k from per-page key min/max. */
import {
  createQuestSummaries,
  questDecodeOnHost,
  recordQuestDecode,
  type QuestSummaries,
} from '../kernels/quest';
import { pagesFor } from '../kernels/pagedKv';
import {
  attentionBuffers,
  countWords,
  decodeParams,
  layerCountsBuffer,
  sumOf,
  type InModelAttention,
  type LayerState,
} from './inModel';
import {
  quest,
  QUEST_DEFAULTS,
  paramsForSparsity as referenceParamsForSparsity,
} from './reference/quest';
import {
  checkSparsity,
  meanOf,
  numberParam,
  requireDecode,
  resolveParams,
  shapeLength,
  type ParamSpec,
  type SparseMethod,
} from './types';

const params: readonly ParamSpec[] = [
  {
    key: 'tokenBudget',
    label: 'Token budget',
    kind: 'int',
    min: 0,
    max: 1 << 24,
    step: 16,
    default: QUEST_DEFAULTS.tokenBudget,
    description:
      'Tokens of complete pages read (a multiple of the page size), plus the current page.',
    sparsityKnob: 'decreasing',
  },
  {
    key: 'pageSize',
    label: 'Page size',
    kind: 'choice',
    options: [16],
    default: QUEST_DEFAULTS.pageSize,
    description: 'Tokens per page (the KV cache page size the kernels read).',
  },
];

/** Quest's layer state: the page summaries, brought up to date after every KV write. */
interface QuestState extends LayerState {
  summaries: QuestSummaries;
}

/**
 * In the model: the summaries of every page of the layer's cache are kept up to date by the model
 * (afterKvWrite: the pages the new tokens touched); decode scores them, selects pages and reads
 * only those. Counts: pages read per KV head.
 */
const inModel: InModelAttention = {
  createLayerState(ctx, cache): QuestState {
    const summaries = createQuestSummaries(ctx, cache.kv, cache.numPages, cache);
    const size = cache.kv.pageSize;
    return {
      summaries,
      afterKvWrite: (start, tokens) =>
        summaries.recordUpdate(
          Math.floor(start / size),
          Math.ceil((start + tokens) / size),
          start + tokens,
        ),
      dispose: () => summaries.dispose(),
    };
  },
  decode(ctx, p, call) {
    const state = call.state as QuestState | undefined;
    if (!state) throw new Error(`decode method 'quest' for layer ${call.layer}: no page summaries`);
    const pageSize = numberParam(p, 'pageSize');
    if (pageSize !== call.kv.pageSize) {
      throw new Error(
        `decode method 'quest' for layer ${call.layer}: pageSize ${pageSize} must equal the KV ` +
          `cache's page size ${call.kv.pageSize}`,
      );
    }
    const tokenBudget = numberParam(p, 'tokenBudget');
    if (tokenBudget % pageSize !== 0) {
      throw new Error(
        `decode method 'quest' for layer ${call.layer}: tokenBudget ${tokenBudget} must be a ` +
          `multiple of pageSize ${pageSize} (whole pages)`,
      );
    }
    const params = decodeParams(call);
    const heads = call.shape.numKvHeads;
    const owned: GPUBuffer[] = [];
    const pageCounts = layerCountsBuffer(ctx, call, 'quest page counts', heads * 4, owned);
    const decode = recordQuestDecode(
      ctx,
      { ...params, tokenBudget },
      { ...attentionBuffers(call), summaries: state.summaries.buffer, pageCounts },
      {},
      call.scratch,
    );
    const pages = pagesFor(params.kvLen, pageSize);
    const words = countWords(ctx, call, decode.pageCounts, heads);
    return {
      record: decode.record,
      dispose: () => {
        decode.dispose();
        owned.forEach((buffer) => buffer.destroy());
      },
      readCount: async () => {
        const touched = Array.from(await words());
        const total = touched.map(() => pages);
        return {
          unit: 'pages',
          touched: sumOf(touched),
          total: sumOf(total),
          perHead: { touched, total },
        };
      },
    };
  },
};

export const questMethod: SparseMethod = {
  name: 'quest',
  label: 'Quest',
  description:
    'Per page and KV head, the channel-wise min and max of the keys bound q.k from above; the ' +
    'pages with the highest bounds (summed over the GQA group, shared by it) are read, plus the ' +
    'current page. The full cache is kept.',
  citation:
    'Tang et al., Quest: Query-Aware Sparsity for Efficient Long-Context LLM Inference (ICML 2024)',
  phases: ['decode'],
  params,
  sparsityMapping:
    'Nominal: tokenBudget = (1 - s) * length rounded to whole pages (at least one page).',
  paramsForSparsity(s, shape) {
    checkSparsity(s);
    const ref = referenceParamsForSparsity(s, shapeLength(shape));
    return resolveParams(params, { tokenBudget: ref.tokenBudget, pageSize: ref.pageSize });
  },
  reference(input, p) {
    requireDecode(input, 'quest');
    const resolved = resolveParams(params, p);
    const pageSize = numberParam(resolved, 'pageSize');
    const result = quest(input, { pageSize, tokenBudget: numberParam(resolved, 'tokenBudget') });
    return {
      output: result.out,
      kept: { kind: 'pages', pageSize, perKvHead: result.pages },
      mask: result.mask,
      measuredSparsity: result.sparsity,
      recall: meanOf(result.recall),
      units: {
        unit: 'page',
        touched: result.pagesRead,
        total: result.summaryPagesRead,
      },
    };
  },
  planner: 'gpu',
  inModel,
  async run(ctx, input, p) {
    requireDecode(input, 'quest');
    const resolved = resolveParams(params, p);
    const pageSize = numberParam(resolved, 'pageSize');
    if (input.pageSize !== undefined && input.pageSize !== pageSize) {
      throw new Error(
        `quest: the KV page size (${input.pageSize}) must equal pageSize (${pageSize})`,
      );
    }
    const kvLen = input.qStart + 1;
    const start = performance.now();
    const result = await questDecodeOnHost(ctx, {
      ...input,
      kvLen,
      kv: {
        pageSize,
        numKvHeads: input.numKvHeads,
        headDim: input.headDim,
        dtype: input.kvDtype ?? 'f32',
      },
      tokenBudget: numberParam(resolved, 'tokenBudget'),
    });
    const kernelMs = performance.now() - start;
    const total = Math.ceil(kvLen / pageSize) * input.numKvHeads;
    return {
      out: result.out,
      stats: {
        measuredSparsity: 1 - result.pagesRead / total,
        blocksOrPagesTouched: result.pagesRead,
        total,
        unit: 'page',
        countedBy: 'kernel',
        kernelMs,
      },
    };
  },
};
