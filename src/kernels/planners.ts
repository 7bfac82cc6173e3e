/**
 * Prefill planners on the GPU: Block-Sparse and Vertical-Slash / FlexPrefill estimation and
 * selection (shaders/attention/planner_*.wgsl), matching the float64 references of
 * src/methods/reference/{blockSparse,verticalSlash,flexPrefill}.ts in what they select (ties to the
 * lower index).
 *
 * Block-Sparse: planner_block_pool (mean-pooled Q and K per block) -> planner_block_score (pooled
 * q . pooled k per head, query block and causal key block) -> planner_select (radix select of the
 * top `topChunks` with the forced blocks). Output on the GPU: fixed-stride rows, row
 * r = head * numQueryBlocks + qb holds its kept key blocks ascending at r * rowStride, its count in
 * `rowLength[r]` (rowStride = min(topChunks, numKeyBlocks), the most a row can keep).
 *
 * Vertical-Slash / FlexPrefill, per batch of heads: planner_vs_scores (the scaled scores of the
 * last rows, a tiled product) -> planner_vs_stats (softmax max and sum per row) -> planner_vs_sums
 * (column and diagonal sums per head); then planner_select (top-k with forced sinks and
 * local diagonals; FlexPrefill first computes the cover count per head) -> planner_vs_blocks (block
 * classes from the bitsets). Output on the GPU: the 'vertical-slash' rule's bitsets (columns of all
 * heads, then diagonals of all heads, keyWords words each), the chosen counts per head, and a dense
 * class grid per (head, query block, key block): 0 empty, 1 full, 2 partial.
 *
 * Either plan then goes to the block-sparse kernel without leaving the GPU: planner_tile_mask packs
 * the rows or the grid into the kernel's mask words (packTileMaskOnGpu), in the same pass. The CSR
 * form of masks.ts (rowStart / keyBlock / blockKind) is built only where the CPU needs the mask
 * (recall, tests), after readback: blockSparseMaskFromRows, verticalSlashMaskFromGrid.
 *
 * Memory: the Block-Sparse score scratch holds numHeads * numQueryBlocks * numKeyBlocks floats and
 * the class grid numHeads * numQueryBlocks * numKeyBlocks words; both must fit one storage binding.
 * The Vertical-Slash estimation keeps rows * numKeys floats per head of a batch, the batch as many
 * heads as fit estimateScratchBytes (one head at least, which must fit a binding). The packed mask
 * has room for every causal key block of every query tile, 1 + mask rows words each (about 3/4 of
 * the class grid's words with 64-token blocks and 2 mask rows a tile); it must fit a binding too.
 */
import {
  bindGroup,
  createEmptyBuffer,
  createStorageBuffer,
  createUniformBuffer,
  readBuffer,
} from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import { stepResources, type StepScratch } from '../gpu/scratch';
import type { RecordDispatches } from '../gpu/timer';
import {
  blockSparseTileConfig,
  maskRowsPerTile,
  type PackedTileMask,
  type TileMaskOnGpu,
} from './blockSparsePrefill';
import { groupSize } from './layout';
import type { HostPrefillInput, PrefillParams } from './densePrefill';
import { packPagedPool, pagesFor } from './pagedKv';
import {
  BLOCK_FULL,
  BLOCK_PARTIAL,
  bitsetWords,
  blockMaskFromLists,
  causalKeyBlocks,
  ceilDiv,
  type BlockMask,
} from '../methods/reference/masks';

/** The planners read the prefill's q, K pool and page table (layout.ts). */
export interface PlannerBuffers {
  q: GPUBuffer;
  kPool: GPUBuffer;
  pageTable: GPUBuffer;
}

/** The prefill's parameters (scale is only read by Vertical-Slash / FlexPrefill). */
export type PlannerParams = PrefillParams;

const WG = 256;
const POOL_WG = 64;
/** The tile (keys and rows) of planner_vs_scores. */
const SCORE_TILE = 64;
const ESTIMATE_SCRATCH_BYTES = 64 * 2 ** 20;

/** A recorded planner: its dispatches, its outputs, and what it allocated (destroy() frees it). */
export interface GpuPlan<Outputs> {
  record: RecordDispatches;
  outputs: Outputs;
  destroy(): void;
}

export interface BlockSparsePlanOptions {
  topChunks: number;
  blockSize: number;
}

export interface BlockSparseOutputs {
  /** u32 rows: rowLength[r] kept key blocks ascending at r * rowStride. */
  rows: GPUBuffer;
  rowLength: GPUBuffer;
  rowStride: number;
  numQueryBlocks: number;
  numKeyBlocks: number;
  /** f32 pooled scores, (head * numQueryBlocks + qb) * numKeyBlocks + kb (causal kb only). */
  scores: GPUBuffer;
}

function kvDefines(params: PlannerParams) {
  const { kv, numKvHeads, headDim } = params;
  if (kv.numKvHeads !== numKvHeads || kv.headDim !== headDim) {
    throw new Error('planner: the KV layout does not match the attention shape');
  }
  return {
    HEAD_DIM: headDim,
    NUM_KV_HEADS: numKvHeads,
    PAGE_SIZE: kv.pageSize,
    KV_F16: kv.dtype === 'f16',
  };
}

function checkBinding(ctx: GpuContext, bytes: number, what: string): void {
  if (bytes > ctx.caps.maxStorageBufferBindingSize) {
    throw new Error(`planner: ${what} needs ${bytes} B, more than one storage binding holds`);
  }
}

export function planBlockSparseOnGpu(
  ctx: GpuContext,
  params: PlannerParams,
  buffers: PlannerBuffers,
  options: BlockSparsePlanOptions,
): GpuPlan<BlockSparseOutputs> {
  const { device } = ctx;
  const { numHeads, numKvHeads, headDim, numQueries, qStart } = params;
  const b = options.blockSize;
  if (qStart % b !== 0) throw new Error('block-sparse needs qStart to be a multiple of blockSize');
  if (options.topChunks < 3) throw new Error('topChunks must be at least 3 (the forced blocks)');
  const numKeys = qStart + numQueries;
  const numQueryBlocks = ceilDiv(numQueries, b);
  const numKeyBlocks = ceilDiv(numKeys, b);
  const rowStride = Math.min(options.topChunks, numKeyBlocks);
  const rowCount = numHeads * numQueryBlocks;
  checkBinding(ctx, rowCount * numKeyBlocks * 4, 'the block score scratch');
  const defines = kvDefines(params);

  const poolPipeline = ctx.pipelines.get('attention/planner_block_pool', {
    ...defines,
    WG: POOL_WG,
  });
  const scorePipeline = ctx.pipelines.get('attention/planner_block_score', {
    HEAD_DIM: headDim,
    WG,
  });
  const selectPipeline = ctx.pipelines.get('attention/planner_select', {
    WG,
    BLOCK_MODE: true,
    COVER: false,
  });
  const pooledQ = createEmptyBuffer(device, numHeads * numQueryBlocks * headDim * 4, 'pooled q');
  const pooledK = createEmptyBuffer(device, numKvHeads * numKeyBlocks * headDim * 4, 'pooled k');
  const scores = createEmptyBuffer(device, rowCount * numKeyBlocks * 4, 'block scores');
  const rows = createEmptyBuffer(device, rowCount * rowStride * 4, 'block-sparse rows');
  const rowLength = createEmptyBuffer(device, rowCount * 4, 'block-sparse row lengths');
  const poolUniforms = createUniformBuffer(device, [
    numQueries,
    numKeys,
    numHeads,
    b,
    numQueryBlocks,
    numKeyBlocks,
  ]);
  const scoreUniforms = createUniformBuffer(device, [
    numHeads,
    groupSize(params),
    numQueryBlocks,
    numKeyBlocks,
    qStart / b,
  ]);
  const selectUniforms = createUniformBuffer(
    device,
    [
      numKeyBlocks,
      numKeys,
      options.topChunks,
      0,
      0,
      0,
      0,
      numQueryBlocks,
      qStart / b,
      rowStride,
      0,
      0,
      0,
    ],
    [12],
  );
  const poolGroup = bindGroup(device, poolPipeline, [
    poolUniforms,
    buffers.q,
    buffers.kPool,
    buffers.pageTable,
    pooledQ,
    pooledK,
  ]);
  const scoreGroup = bindGroup(device, scorePipeline, [scoreUniforms, pooledQ, pooledK, scores]);
  const selectGroup = bindGroup(device, selectPipeline, [selectUniforms, scores, rows, rowLength]);
  const record: RecordDispatches = (pass) => {
    pass.setPipeline(poolPipeline);
    pass.setBindGroup(0, poolGroup);
    pass.dispatchWorkgroups(
      ceilDiv(headDim, POOL_WG),
      Math.max(numQueryBlocks, numKeyBlocks),
      numHeads + numKvHeads,
    );
    pass.setPipeline(scorePipeline);
    pass.setBindGroup(0, scoreGroup);
    pass.dispatchWorkgroups(ceilDiv(numKeyBlocks, WG), numQueryBlocks, numHeads);
    pass.setPipeline(selectPipeline);
    pass.setBindGroup(0, selectGroup);
    pass.dispatchWorkgroups(numQueryBlocks, numHeads);
  };
  const owned = [pooledQ, pooledK, scores, rows, rowLength, poolUniforms, scoreUniforms];
  owned.push(selectUniforms);
  return {
    record,
    outputs: { rows, rowLength, rowStride, numQueryBlocks, numKeyBlocks, scores },
    destroy: () => owned.forEach((buffer) => buffer.destroy()),
  };
}

/** The CSR BlockMask (masks.ts, rule 'none', all blocks full) from the fixed-stride rows. */
export function blockSparseMaskFromRows(
  shape: { numHeads: number; numQueries: number; qStart: number },
  blockSize: number,
  rows: Uint32Array,
  rowLength: Uint32Array,
  rowStride: number,
): BlockMask {
  const numQueryBlocks = ceilDiv(shape.numQueries, blockSize);
  return blockMaskFromLists({ ...shape, blockQ: blockSize, blockK: blockSize }, (h, qb) => {
    const r = h * numQueryBlocks + qb;
    return rows.subarray(r * rowStride, r * rowStride + rowLength[r]);
  });
}

/** What the planners that estimate from the last queries (createEstimation) take besides. */
export interface EstimationTuning {
  /** Most bytes of scaled scores kept at once (heads are batched to fit); default 64 MiB. */
  estimateScratchBytes?: number;
}

export interface VerticalSlashPlanOptions extends EstimationTuning {
  lastQ: number;
  verticalSize: number;
  slashSize: number;
  sinkColumns?: number;
  localDiagonals?: number;
  blockQ?: number;
  blockK?: number;
}

export interface FlexPrefillPlanOptions extends EstimationTuning {
  mode: 'flexprefill';
  alpha: number;
  minBudget: number;
  /** Number of last queries of the estimation (the reference's approximationSize). */
  approximation: number;
  sinkColumns?: number;
  localDiagonals?: number;
  blockQ?: number;
  blockK?: number;
}

export interface VerticalSlashOutputs {
  /** u32: column bitsets of every head, then diagonal bitsets of every head, keyWords each. */
  bits: GPUBuffer;
  keyWords: number;
  /** u32 per head: vertical counts, then slash counts (FlexPrefill's adaptive ones). */
  sizes: GPUBuffer;
  /** u32 per (head, query block, key block): 0 empty, 1 full, 2 partial. */
  classes: GPUBuffer;
  numQueryBlocks: number;
  numKeyBlocks: number;
  blockQ: number;
  blockK: number;
  /** f32 column sums of every head, then diagonal sums, numKeys each. */
  scores: GPUBuffer;
}

/** `scratch`: the step's, for the buffers only the plan's own dispatches read. */
export function planVerticalSlashOnGpu(
  ctx: GpuContext,
  params: PlannerParams,
  buffers: PlannerBuffers,
  options: VerticalSlashPlanOptions | FlexPrefillPlanOptions,
  scratch?: StepScratch,
): GpuPlan<VerticalSlashOutputs> {
  const { device } = ctx;
  const { numHeads, numQueries, qStart } = params;
  const flex = 'mode' in options;
  const sinkColumns = options.sinkColumns ?? 4;
  const localDiagonals = options.localDiagonals ?? 64;
  const blockQ = options.blockQ ?? 64;
  const blockK = options.blockK ?? 64;
  if (blockK % 32 !== 0) throw new Error('vertical-slash planner: blockK must be a multiple of 32');
  const numKeys = qStart + numQueries;
  const rows = Math.min(flex ? options.approximation : options.lastQ, numQueries);
  if (rows < 1) throw new Error('vertical-slash planner: no query to estimate with');
  const keyWords = bitsetWords(numKeys);
  const numQueryBlocks = ceilDiv(numQueries, blockQ);
  const numKeyBlocks = ceilDiv(numKeys, blockK);
  checkBinding(ctx, numHeads * numQueryBlocks * numKeyBlocks * 4, 'the block class grid');
  const estimation = createEstimation(
    ctx,
    params,
    buffers,
    rows,
    options.estimateScratchBytes,
    scratch,
  );
  const sumsPipeline = ctx.pipelines.get('attention/planner_vs_sums', { WG });
  const selectPipeline = ctx.pipelines.get('attention/planner_select', {
    WG,
    BLOCK_MODE: false,
    COVER: flex,
  });
  const blocksPipeline = ctx.pipelines.get('attention/planner_vs_blocks', { WG: 64 });
  const owned: GPUBuffer[] = [];
  const scores = stepResources(device, scratch, owned).buffer(
    'vs scores',
    2 * numHeads * numKeys * 4,
  );
  const bits = createEmptyBuffer(device, 2 * numHeads * keyWords * 4, 'vs bitsets');
  const sizes = createEmptyBuffer(device, 2 * numHeads * 4, 'vs sizes');
  const classes = createEmptyBuffer(
    device,
    numHeads * numQueryBlocks * numKeyBlocks * 4,
    'vs block classes',
  );
  const { scaled, stats } = estimation;
  const sumsGroups = estimation.batches.map((batch) =>
    bindGroup(device, sumsPipeline, [batch.uniforms, scaled, stats, scores]),
  );
  const selectUniforms = createUniformBuffer(
    device,
    [
      numKeys,
      numKeys,
      flex ? 0 : options.verticalSize,
      flex ? 0 : options.slashSize,
      numHeads,
      sinkColumns,
      localDiagonals,
      0,
      0,
      keyWords,
      flex ? options.minBudget : 0,
      rows,
      flex ? options.alpha : 0,
    ],
    [12],
  );
  const blocksUniforms = createUniformBuffer(device, [
    numQueries,
    qStart,
    numHeads,
    keyWords,
    blockQ,
    blockK,
    numQueryBlocks,
    numKeyBlocks,
  ]);
  const selectGroup = bindGroup(device, selectPipeline, [selectUniforms, scores, bits, sizes]);
  const blocksGroup = bindGroup(device, blocksPipeline, [blocksUniforms, bits, classes]);
  const record: RecordDispatches = (pass) => {
    estimation.batches.forEach((batch, b) => {
      estimation.record(pass, b);
      pass.setPipeline(sumsPipeline);
      pass.setBindGroup(0, sumsGroups[b]);
      pass.dispatchWorkgroups(ceilDiv(numKeys, WG), 2, batch.heads);
    });
    pass.setPipeline(selectPipeline);
    pass.setBindGroup(0, selectGroup);
    pass.dispatchWorkgroups(numHeads, 2);
    pass.setPipeline(blocksPipeline);
    pass.setBindGroup(0, blocksGroup);
    pass.dispatchWorkgroups(ceilDiv(numKeyBlocks, 64), numQueryBlocks, numHeads);
  };
  owned.push(bits, sizes, classes, selectUniforms, blocksUniforms);
  return {
    record,
    outputs: {
      bits,
      keyWords,
      sizes,
      classes,
      numQueryBlocks,
      numKeyBlocks,
      blockQ,
      blockK,
      scores,
    },
    destroy: () => {
      owned.forEach((buffer) => buffer.destroy());
      estimation.destroy();
    },
  };
}

/** One batch of the estimation: query heads headOffset .. headOffset + heads - 1. */
export interface EstimationBatch {
  headOffset: number;
  heads: number;
  /** common/vs_estimate's Params for the batch. */
  uniforms: GPUBuffer;
}

/**
 * The estimation that Vertical-Slash, FlexPrefill and SnapKV share: the scaled scores of the last
 * `rows` queries (planner_vs_scores, in `scaled`, one batch of heads at a time) and their softmax
 * statistics (planner_vs_stats, in `stats` for every head). Batches hold whole GQA groups, as many
 * as fit `scratchBytes`; record(pass, b) records batch b, after which the caller reads `scaled`.
 */
export function createEstimation(
  ctx: GpuContext,
  params: PlannerParams,
  buffers: PlannerBuffers,
  rows: number,
  scratchBytes = ESTIMATE_SCRATCH_BYTES,
  scratch?: StepScratch,
) {
  const { device } = ctx;
  const { numHeads, numQueries, qStart, scale } = params;
  const numKeys = qStart + numQueries;
  const group = groupSize(params);
  const groupBytes = group * rows * numKeys * 4;
  checkBinding(ctx, groupBytes, "one KV group's estimation scores");
  const fitting = Math.floor(
    Math.min(scratchBytes, ctx.caps.maxStorageBufferBindingSize) / groupBytes,
  );
  const headsPerBatch = Math.min(numHeads, group * Math.max(1, fitting));
  const scoresPipeline = ctx.pipelines.get('attention/planner_vs_scores', kvDefines(params));
  const statsPipeline = ctx.pipelines.get('attention/planner_vs_stats', { WG });
  const owned: GPUBuffer[] = [];
  const intermediate = stepResources(device, scratch, owned);
  const scaled = intermediate.buffer('scaled scores', (headsPerBatch / group) * groupBytes);
  const stats = intermediate.buffer('softmax stats', numHeads * rows * 2 * 4);
  const kvBuffers = [buffers.q, buffers.kPool, buffers.pageTable];
  const batches = Array.from({ length: ceilDiv(numHeads, headsPerBatch) }, (_, b) => {
    const headOffset = b * headsPerBatch;
    const uniforms = createUniformBuffer(
      device,
      [numQueries, qStart, numHeads, group, rows, scale, numKeys, headOffset],
      [5],
    );
    const batch: EstimationBatch = {
      headOffset,
      heads: Math.min(headsPerBatch, numHeads - headOffset),
      uniforms,
    };
    return batch;
  });
  const groups = batches.map((batch) => ({
    scores: bindGroup(device, scoresPipeline, [batch.uniforms, ...kvBuffers, scaled]),
    stats: bindGroup(device, statsPipeline, [batch.uniforms, scaled, stats]),
  }));
  return {
    scaled,
    stats,
    batches,
    record(pass: GPUComputePassEncoder, b: number) {
      const { heads } = batches[b];
      pass.setPipeline(scoresPipeline);
      pass.setBindGroup(0, groups[b].scores);
      pass.dispatchWorkgroups(ceilDiv(numKeys, SCORE_TILE), ceilDiv(rows, SCORE_TILE), heads);
      pass.setPipeline(statsPipeline);
      pass.setBindGroup(0, groups[b].stats);
      pass.dispatchWorkgroups(rows, heads);
    },
    destroy() {
      [...owned, ...batches.map((batch) => batch.uniforms)].forEach((buffer) => buffer.destroy());
    },
  };
}

/** The CSR BlockMask (masks.ts, rule 'vertical-slash') from the bitsets and the class grid. */
export function verticalSlashMaskFromGrid(
  shape: { numHeads: number; numQueries: number; qStart: number },
  blockQ: number,
  blockK: number,
  bits: Uint32Array,
  classes: Uint32Array,
): BlockMask {
  const { numHeads, numQueries, qStart } = shape;
  const numKeys = qStart + numQueries;
  const keyWords = bitsetWords(numKeys);
  const numQueryBlocks = ceilDiv(numQueries, blockQ);
  const numKeyBlocks = ceilDiv(numKeys, blockK);
  const rowStart = new Uint32Array(numHeads * numQueryBlocks + 1);
  const keyBlocks: number[] = [];
  const kinds: number[] = [];
  for (let r = 0; r < numHeads * numQueryBlocks; r++) {
    for (let kb = 0; kb < numKeyBlocks; kb++) {
      const kind = classes[r * numKeyBlocks + kb];
      if (kind === 0) continue;
      keyBlocks.push(kb);
      kinds.push(kind === 1 ? BLOCK_FULL : BLOCK_PARTIAL);
    }
    rowStart[r + 1] = keyBlocks.length;
  }
  return {
    numHeads,
    numQueries,
    qStart,
    blockQ,
    blockK,
    numKeys,
    numQueryBlocks,
    numKeyBlocks,
    rowStart,
    keyBlock: Uint32Array.from(keyBlocks),
    blockKind: Uint32Array.from(kinds),
    rule: {
      kind: 'vertical-slash',
      keyWords,
      columns: bits.slice(0, numHeads * keyWords),
      diagonals: bits.slice(numHeads * keyWords, 2 * numHeads * keyWords),
    },
  };
}

/** What the tile-mask packing reads: a Block-Sparse plan's rows or a Vertical-Slash class grid. */
export type TileMaskSource =
  | { kind: 'rows'; plan: BlockSparseOutputs; blockSize: number }
  | { kind: 'grid'; plan: VerticalSlashOutputs };

const PACK_WG = 256;
/** Workgroup words of the Block-Sparse rows' bitmaps, shared by the tile's mask rows. */
const PACK_BITMAP_WORDS = 2048;

/**
 * The block-sparse kernel's mask (TileMaskOnGpu) from a GPU plan, by planner_tile_mask.wgsl
 * recorded after the plan in the same pass: the kernel then follows with no readback. Every query
 * tile gets room for the most its union can hold (the causal key blocks of its last row; for rows,
 * no more than its rows list); its first entry is written here, the entry past its last by the GPU.
 */
export function packTileMaskOnGpu(
  ctx: GpuContext,
  params: PlannerParams,
  source: TileMaskSource,
): GpuPlan<TileMaskOnGpu> {
  const { device } = ctx;
  const { numHeads, numQueries, qStart } = params;
  const fromRows = source.kind === 'rows';
  const blockQ = fromRows ? source.blockSize : source.plan.blockQ;
  const blockK = fromRows ? source.blockSize : source.plan.blockK;
  const { numQueryBlocks, numKeyBlocks } = source.plan;
  const geometry = { numHeads, numQueries, qStart, blockQ, blockK, numQueryBlocks };
  // The kernel's default tiling, which recordBlockSparsePrefillOnTiles also takes.
  const config = blockSparseTileConfig(ctx, params.headDim, blockQ, blockK);
  const rowsPerTile = maskRowsPerTile(config, blockQ);
  const rowWords = PACK_BITMAP_WORDS / rowsPerTile;
  if (fromRows && numKeyBlocks > rowWords * 32) {
    throw new Error(
      `block-sparse planner: ${numKeyBlocks} key blocks of ${blockK} tokens are more than the ` +
        `GPU packing holds (${rowWords * 32}); use larger blocks or a shorter context`,
    );
  }
  const numQueryTiles = ceilDiv(numQueryBlocks, rowsPerTile);
  const tiles = numHeads * numQueryTiles;
  const keyWords = fromRows ? 0 : source.plan.keyWords;
  const ruleA = 2 * tiles;
  const ruleB = ruleA + numHeads * keyWords;
  const entriesOffset = ruleB + numHeads * keyWords;
  const header = new Uint32Array(2 * tiles);
  let capacity = 0;
  for (let h = 0; h < numHeads; h++) {
    for (let t = 0; t < numQueryTiles; t++) {
      header[2 * (h * numQueryTiles + t)] = capacity;
      const lastQb = Math.min(numQueryBlocks, (t + 1) * rowsPerTile) - 1;
      const causal = causalKeyBlocks(geometry, lastQb);
      const rows = lastQb + 1 - t * rowsPerTile;
      capacity += fromRows ? Math.min(causal, rows * source.plan.rowStride) : causal;
    }
  }
  const wordCount = entriesOffset + capacity * (1 + rowsPerTile);
  checkBinding(ctx, wordCount * 4, 'the packed tile mask');
  const words = createEmptyBuffer(device, wordCount * 4, 'block-sparse prefill mask (GPU plan)');
  device.queue.writeBuffer(words, 0, header);
  const pipeline = ctx.pipelines.get('attention/planner_tile_mask', {
    WG: PACK_WG,
    MASK_ROWS: rowsPerTile,
    FROM_ROWS: fromRows,
    ROW_WORDS: rowWords,
  });
  const uniforms = createUniformBuffer(device, [
    numQueries,
    qStart,
    blockQ,
    blockK,
    numHeads,
    numQueryBlocks,
    numKeyBlocks,
    numQueryTiles,
    entriesOffset,
    fromRows ? source.plan.rowStride : 0,
    ruleA,
    keyWords,
  ]);
  const inputs = fromRows
    ? [source.plan.rows, source.plan.rowLength]
    : [source.plan.classes, source.plan.bits];
  const group = bindGroup(device, pipeline, [uniforms, ...inputs, words]);
  return {
    record: (pass) => {
      if (tiles === 0) return;
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(numQueryTiles, numHeads);
    },
    outputs: {
      geometry,
      rule: fromRows ? 'none' : 'vertical-slash',
      words,
      layout: { numQueryTiles, entriesOffset, ruleA, ruleB, ruleStride: keyWords },
    },
    destroy: () => {
      words.destroy();
      uniforms.destroy();
    },
  };
}

/** Input of the host helpers: the prefill's host input (V is not read). */
export type HostPlannerInput = Omit<HostPrefillInput, 'v'>;

function uploadInputs(ctx: GpuContext, input: HostPlannerInput): PlannerBuffers {
  const { device } = ctx;
  const kvLen = input.qStart + input.numQueries;
  const pageTable =
    input.pageTable ??
    Uint32Array.from({ length: pagesFor(kvLen, input.kv.pageSize) }, (_, i) => i);
  return {
    q: createStorageBuffer(device, input.q, 'planner q'),
    kPool: createStorageBuffer(device, packPagedPool(input.k, kvLen, input.kv, pageTable).data),
    pageTable: createStorageBuffer(device, pageTable, 'planner page table'),
  };
}

function submit(ctx: GpuContext, record: RecordDispatches): void {
  const encoder = ctx.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass);
  pass.end();
  ctx.device.queue.submit([encoder.finish()]);
}

async function readU32(ctx: GpuContext, buffer: GPUBuffer, count: number): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(ctx.device, buffer, Math.max(4, count * 4)), 0, count);
}

/** The GPU packing of a plan (packTileMaskOnGpu), read back. */
async function readPacking(
  ctx: GpuContext,
  packing: GpuPlan<TileMaskOnGpu>,
): Promise<PackedTileMask> {
  const { words, layout } = packing.outputs;
  return { ...layout, words: await readU32(ctx, words, words.size / 4) };
}

export interface BlockSparseHostResult {
  mask: BlockMask;
  /** blocks[h][qb]: kept key blocks ascending (as the reference's `blocks`). */
  blocks: number[][][];
  /** The GPU packing of the plan (withTiles). */
  tiles?: PackedTileMask;
}

/**
 * Uploads q and K, runs the Block-Sparse planner (and with `withTiles` its packing), reads the rows
 * back and builds the CSR mask.
 */
export async function planBlockSparseOnHost(
  ctx: GpuContext,
  input: HostPlannerInput,
  options: BlockSparsePlanOptions,
  withTiles = false,
): Promise<BlockSparseHostResult> {
  const buffers = uploadInputs(ctx, input);
  const plan = planBlockSparseOnGpu(ctx, input, buffers, options);
  const source = { kind: 'rows' as const, plan: plan.outputs, blockSize: options.blockSize };
  const packing = withTiles ? packTileMaskOnGpu(ctx, input, source) : null;
  try {
    submit(ctx, (pass) => {
      plan.record(pass);
      packing?.record(pass);
    });
    const { rowStride, numQueryBlocks } = plan.outputs;
    const rowCount = input.numHeads * numQueryBlocks;
    const rows = await readU32(ctx, plan.outputs.rows, rowCount * rowStride);
    const rowLength = await readU32(ctx, plan.outputs.rowLength, rowCount);
    const mask = blockSparseMaskFromRows(input, options.blockSize, rows, rowLength, rowStride);
    const blocks = Array.from({ length: input.numHeads }, (_, h) =>
      Array.from({ length: numQueryBlocks }, (_, qb) => {
        const r = h * numQueryBlocks + qb;
        return Array.from(rows.subarray(r * rowStride, r * rowStride + rowLength[r]));
      }),
    );
    return { mask, blocks, tiles: packing ? await readPacking(ctx, packing) : undefined };
  } finally {
    packing?.destroy();
    plan.destroy();
    for (const buffer of Object.values(buffers)) buffer.destroy();
  }
}

export interface VerticalSlashHostResult {
  mask: BlockMask;
  /** Kept key columns and diagonal offsets per head, ascending (as the reference's). */
  columns: number[][];
  diagonals: number[][];
  verticalSizes: number[];
  slashSizes: number[];
  /** The GPU packing of the plan (withTiles). */
  tiles?: PackedTileMask;
}

function bitsetIndices(bits: Uint32Array, offset: number, count: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < count; j++) {
    if ((bits[offset + (j >>> 5)] >>> (j & 31)) & 1) out.push(j);
  }
  return out;
}

/**
 * Uploads q and K, runs the Vertical-Slash / FlexPrefill planner (and with `withTiles` its
 * packing) and builds the CSR mask.
 */
export async function planVerticalSlashOnHost(
  ctx: GpuContext,
  input: HostPlannerInput,
  options: VerticalSlashPlanOptions | FlexPrefillPlanOptions,
  withTiles = false,
): Promise<VerticalSlashHostResult> {
  const buffers = uploadInputs(ctx, input);
  const plan = planVerticalSlashOnGpu(ctx, input, buffers, options);
  const source = { kind: 'grid' as const, plan: plan.outputs };
  const packing = withTiles ? packTileMaskOnGpu(ctx, input, source) : null;
  try {
    submit(ctx, (pass) => {
      plan.record(pass);
      packing?.record(pass);
    });
    const { keyWords, numQueryBlocks, numKeyBlocks, blockQ, blockK } = plan.outputs;
    const { numHeads } = input;
    const bits = await readU32(ctx, plan.outputs.bits, 2 * numHeads * keyWords);
    const sizes = await readU32(ctx, plan.outputs.sizes, 2 * numHeads);
    const classes = await readU32(
      ctx,
      plan.outputs.classes,
      numHeads * numQueryBlocks * numKeyBlocks,
    );
    const numKeys = input.qStart + input.numQueries;
    const mask = verticalSlashMaskFromGrid(input, blockQ, blockK, bits, classes);
    const heads = Array.from({ length: numHeads }, (_, h) => h);
    return {
      mask,
      columns: heads.map((h) => bitsetIndices(bits, h * keyWords, numKeys)),
      diagonals: heads.map((h) => bitsetIndices(bits, (numHeads + h) * keyWords, numKeys)),
      verticalSizes: Array.from(sizes.subarray(0, numHeads)),
      slashSizes: Array.from(sizes.subarray(numHeads, 2 * numHeads)),
      tiles: packing ? await readPacking(ctx, packing) : undefined,
    };
  } finally {
    packing?.destroy();
    plan.destroy();
    for (const buffer of Object.values(buffers)) buffer.destroy();
  }
}
