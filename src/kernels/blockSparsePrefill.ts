/**
 * Block-sparse causal prefill attention (shaders/attention/block_sparse_prefill.wgsl): the dense
 * prefill kernel restricted to a BlockMask (src/methods/reference/masks.ts), with a per (head,
 * query block) count of the key blocks the kernel processed. The mask's CSR form (packMask) is
 * also what the attention map reads; the kernel reads it regrouped per query tile: packTileMask on
 * the CPU, or a GPU planner's packing (planners.ts) earlier in the kernel's pass.
 */
import {
  bindGroup,
  createEmptyBuffer,
  createStorageBuffer,
  createUniformBuffer,
  readBuffer,
  readFloat32,
} from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import type { RecordDispatches } from '../gpu/timer';
import {
  BLOCK_PARTIAL,
  causalKeyBlocks,
  ceilDiv,
  type BlockMask,
  type ElementRule,
  type MaskGeometry,
} from '../methods/reference/masks';
import {
  prefillTileConfig,
  type HostPrefillInput,
  type PrefillBuffers,
  type PrefillParams,
} from './densePrefill';
import { groupSize } from './layout';
import { packPagedPool, pagesFor } from './pagedKv';

/** Block sizes (query and key, independently) the kernel takes: 64 (Vertical-Slash, FlexPrefill,
 * sliding window) and 16 (Block-Sparse). */
export const SUPPORTED_BLOCK_SIZES: readonly number[] = [16, 64];

export interface BlockSparsePrefillBuffers extends PrefillBuffers {
  /** u32 per mask row (head * numQueryBlocks + query block): key blocks the kernel processed. */
  counts: GPUBuffer;
}

export interface BlockSparseTileConfig {
  subgroups: boolean;
  lanesPerRow: number;
  rowsPerThread: number;
  threads: number;
  /** Queries per workgroup: threads / lanesPerRow * rowsPerThread, a multiple of the mask's blockQ. */
  queryTile: number;
  /** Keys per K and V tile in workgroup memory (16 or 32). */
  keyTile: number;
  keyChunk: number;
  /** Keys of one block that one tile load takes: min(blockK, keyTile). */
  segment: number;
  workgroupBytes: number;
}

/**
 * Dense prefill's tiling (prefillTileConfig: 2 lanes per row, 1 row per lane pair, 256
 * invocations, so 128 queries per workgroup, keys scored 8 at a time, K/V tiles of up to 32 keys):
 * a workgroup covers queryTile / blockQ mask rows and loads each key block they list once for all
 * of them. On the H200 at 8K, 32/8 heads, d 128, against one 64-query mask row per workgroup:
 * 3.86 against 4.78 ms on an even mask at s 0.9 (a quarter of the blocks a tile loads serve both
 * its rows), about 4.0 against 7.0 ms on Vertical-Slash masks at s 0.89 (rows share most). The key
 * tile is a power of two so that a tile holds whole 16-key blocks or an exact part of a 64-key
 * block.
 */
export function blockSparseTileConfig(
  ctx: GpuContext,
  headDim: number,
  blockQ: number,
  blockK: number,
): BlockSparseTileConfig {
  if (headDim % 16 !== 0) {
    throw new Error(`block-sparse prefill needs headDim % 16 == 0, got ${headDim}`);
  }
  if (!SUPPORTED_BLOCK_SIZES.includes(blockQ) || !SUPPORTED_BLOCK_SIZES.includes(blockK)) {
    throw new Error(
      `block-sparse prefill supports blocks of ${SUPPORTED_BLOCK_SIZES.join(' or ')} ` +
        `(query and key), got blockQ=${blockQ} blockK=${blockK}`,
    );
  }
  const dense = prefillTileConfig(ctx, headDim);
  const bytesPerKey = 2 * headDim * 4;
  const keyTile = [32, 16].find(
    (keys) => keys >= dense.keyChunk && keys * bytesPerKey <= ctx.caps.maxWorkgroupStorageBytes,
  );
  if (keyTile === undefined) {
    throw new Error(
      `block-sparse prefill: ${ctx.caps.maxWorkgroupStorageBytes} B of workgroup memory is too little`,
    );
  }
  return {
    subgroups: dense.subgroups,
    lanesPerRow: dense.lanesPerRow,
    rowsPerThread: dense.rowsPerThread,
    threads: dense.threads,
    queryTile: dense.queryTile,
    keyTile,
    keyChunk: dense.keyChunk,
    segment: Math.min(blockK, keyTile),
    workgroupBytes: keyTile * bytesPerKey,
  };
}

/** The mask as one u32 buffer; offsets of its sections (see the shader's Params). */
export interface PackedMask {
  words: Uint32Array;
  entriesOffset: number;
  ruleA: number;
  ruleB: number;
  ruleStride: number;
}

export function packMask(mask: BlockMask): PackedMask {
  const { rowStart, keyBlock, blockKind } = mask;
  const rule = ruleWords(mask, true);
  const entriesOffset = rowStart.length;
  const entries = new Uint32Array(keyBlock.length);
  for (let e = 0; e < keyBlock.length; e++) entries[e] = keyBlock[e] * 2 + blockKind[e];
  const { words, ruleA, ruleB } = joinWithRule([rowStart, entries], rule);
  return { words, entriesOffset, ruleA, ruleB, ruleStride: rule.stride };
}

interface RuleWords {
  a: Uint32Array;
  b: Uint32Array;
  stride: number;
}

/**
 * The mask rule's two word sections and its stride: Vertical-Slash's columns and diagonals, or a
 * bitset's per-entry slots (unless the caller folds them into its entries) and bits.
 */
function ruleWords(mask: BlockMask, slotsInRule: boolean): RuleWords {
  const { rule, blockKind } = mask;
  const none = new Uint32Array(0);
  if (rule.kind === 'vertical-slash') {
    return { a: rule.columns, b: rule.diagonals, stride: rule.keyWords };
  }
  if (rule.kind === 'bitset') {
    const slots = new Uint32Array(rule.slot.buffer, rule.slot.byteOffset, rule.slot.length);
    return { a: slotsInRule ? slots : none, b: rule.bits, stride: rule.wordsPerBlock };
  }
  if (blockKind.includes(BLOCK_PARTIAL)) {
    throw new Error("block-sparse prefill: rule 'none' with partial blocks");
  }
  return { a: none, b: none, stride: 0 };
}

/** The sections one after another, then the rule's two; where the rule's start. */
function joinWithRule(
  sections: readonly Uint32Array[],
  rule: RuleWords,
): { words: Uint32Array; ruleA: number; ruleB: number } {
  const ruleA = sections.reduce((n, w) => n + w.length, 0);
  const ruleB = ruleA + rule.a.length;
  const words = new Uint32Array(ruleB + rule.b.length);
  let at = 0;
  for (const section of sections) {
    words.set(section, at);
    at += section.length;
  }
  words.set(rule.a, ruleA);
  words.set(rule.b, ruleB);
  return { words, ruleA, ruleB };
}

/** Where the sections of a mask regrouped per query tile lie (see the shader's header and Params). */
export interface TileMaskLayout {
  numQueryTiles: number;
  entriesOffset: number;
  ruleA: number;
  ruleB: number;
  ruleStride: number;
}

/** The mask regrouped per query tile, packed on the CPU. */
export interface PackedTileMask extends TileMaskLayout {
  words: Uint32Array;
}

/**
 * What the kernel needs to know of a mask it reads from a GPU buffer: its blocks, its rule, and
 * where its sections lie (a GPU planner's packing, planners.ts, or an upload of packTileMask).
 */
export interface TileMaskOnGpu {
  geometry: MaskGeometry & { numQueryBlocks: number };
  rule: ElementRule['kind'];
  words: GPUBuffer;
  layout: TileMaskLayout;
}

const STATE_FULL = 1;
const STATE_PARTIAL = 2;

/**
 * Per (head, query tile of rowsPerTile mask rows): the union of the rows' key blocks, ascending,
 * each as [key block, a state per row] (0: the row does not list it; STATE_FULL; STATE_PARTIAL +
 * 4 * the bitset rule's slot). Words: per tile its first entry and the one past its last, the rule's
 * words, then the entries, written in place (the unions' sizes are known only at the end; the
 * words past them are not part of the returned view).
 */
export function packTileMask(mask: BlockMask, rowsPerTile: number): PackedTileMask {
  const { rowStart, keyBlock, blockKind, rule, numHeads, numQueryBlocks, numKeyBlocks } = mask;
  const ruleSections = ruleWords(mask, false);
  const numQueryTiles = ceilDiv(numQueryBlocks, rowsPerTile);
  const stride = 1 + rowsPerTile;
  const tiles = numHeads * numQueryTiles;
  // A tile's union holds at most its rows' entries, and at most the key blocks its rows see.
  let bound = 0;
  for (let h = 0; h < numHeads; h++) {
    for (let t = 0; t < numQueryTiles; t++) {
      const firstRow = h * numQueryBlocks + t * rowsPerTile;
      const lastQb = Math.min(numQueryBlocks, (t + 1) * rowsPerTile) - 1;
      const listed = rowStart[h * numQueryBlocks + lastQb + 1] - rowStart[firstRow];
      bound += Math.min(listed, causalKeyBlocks(mask, lastQb));
    }
  }
  const ruleA = 2 * tiles;
  const ruleB = ruleA + ruleSections.a.length;
  const entriesOffset = ruleB + ruleSections.b.length;
  const words = new Uint32Array(entriesOffset + bound * stride);
  words.set(ruleSections.a, ruleA);
  words.set(ruleSections.b, ruleB);
  // Per key block of the tile: its state in each row (0: absent), and whether any row lists it.
  const states = new Uint32Array(numKeyBlocks * rowsPerTile);
  const listed = new Uint8Array(numKeyBlocks);
  let used = 0;
  for (let h = 0; h < numHeads; h++) {
    for (let t = 0; t < numQueryTiles; t++) {
      const tile = h * numQueryTiles + t;
      words[2 * tile] = used;
      // The rows' blocks by key block, then the union in ascending order: no merge of the lists.
      let first = numKeyBlocks;
      let last = -1;
      for (let r = 0; r < rowsPerTile && t * rowsPerTile + r < numQueryBlocks; r++) {
        const row = h * numQueryBlocks + t * rowsPerTile + r;
        for (let e = rowStart[row]; e < rowStart[row + 1]; e++) {
          const kb = keyBlock[e];
          states[kb * rowsPerTile + r] =
            blockKind[e] === BLOCK_PARTIAL
              ? STATE_PARTIAL + 4 * (rule.kind === 'bitset' ? rule.slot[e] : 0)
              : STATE_FULL;
          listed[kb] = 1;
          if (kb < first) first = kb;
          if (kb > last) last = kb;
        }
      }
      for (let kb = first; kb <= last; kb++) {
        if (listed[kb] === 0) continue;
        const base = entriesOffset + used * stride;
        words[base] = kb;
        const from = kb * rowsPerTile;
        for (let r = 0; r < rowsPerTile; r++) {
          words[base + 1 + r] = states[from + r];
          states[from + r] = 0;
        }
        listed[kb] = 0;
        used++;
      }
      words[2 * tile + 1] = used;
    }
  }
  return {
    words: words.subarray(0, entriesOffset + used * stride),
    numQueryTiles,
    entriesOffset,
    ruleA,
    ruleB,
    ruleStride: ruleSections.stride,
  };
}

function checkMask(params: PrefillParams, mask: MaskGeometry): void {
  if (
    mask.numHeads !== params.numHeads ||
    mask.numQueries !== params.numQueries ||
    mask.qStart !== params.qStart
  ) {
    throw new Error('block-sparse prefill: the block mask does not match the attention shape');
  }
  if (params.kv.numKvHeads !== params.numKvHeads || params.kv.headDim !== params.headDim) {
    throw new Error('block-sparse prefill: the KV layout does not match the attention shape');
  }
}

const shaderName = 'attention/block_sparse_prefill';

/** Mask rows per query tile of the kernel, for masks of blockQ-query rows. */
export function maskRowsPerTile(config: BlockSparseTileConfig, blockQ: number): number {
  return config.queryTile / blockQ;
}

/**
 * Records the dispatch; the mask is packed and uploaded once, here. dispose() frees what this call
 * created (the mask and uniform buffers), not the caller's buffers.
 */
export function recordBlockSparsePrefill(
  ctx: GpuContext,
  params: PrefillParams,
  mask: BlockMask,
  buffers: BlockSparsePrefillBuffers,
  config: BlockSparseTileConfig = blockSparseTileConfig(
    ctx,
    params.headDim,
    mask.blockQ,
    mask.blockK,
  ),
): { record: RecordDispatches; dispose: () => void } {
  checkMask(params, mask);
  const { words, ...layout } = packTileMask(mask, maskRowsPerTile(config, mask.blockQ));
  const maskBuffer = createStorageBuffer(ctx.device, words, 'block-sparse prefill mask');
  const kernel = recordBlockSparsePrefillOnTiles(
    ctx,
    params,
    { geometry: mask, rule: mask.rule.kind, words: maskBuffer, layout },
    buffers,
    config,
  );
  return {
    record: kernel.record,
    dispose: () => {
      kernel.dispose();
      maskBuffer.destroy();
    },
  };
}

/**
 * Records the dispatch on a mask already in GPU memory (written by a GPU planner's packing in the
 * same pass, or uploaded). dispose() frees the uniform buffer, not the mask.
 */
export function recordBlockSparsePrefillOnTiles(
  ctx: GpuContext,
  params: PrefillParams,
  mask: TileMaskOnGpu,
  buffers: BlockSparsePrefillBuffers,
  config: BlockSparseTileConfig = blockSparseTileConfig(
    ctx,
    params.headDim,
    mask.geometry.blockQ,
    mask.geometry.blockK,
  ),
): { record: RecordDispatches; dispose: () => void } {
  const { geometry, layout } = mask;
  checkMask(params, geometry);
  if (
    config.queryTile % geometry.blockQ !== 0 ||
    config.queryTile !== (config.threads / config.lanesPerRow) * config.rowsPerThread ||
    config.segment !== Math.min(geometry.blockK, config.keyTile)
  ) {
    throw new Error('block-sparse prefill: the tile configuration does not match the mask blocks');
  }
  const rowsPerTile = maskRowsPerTile(config, geometry.blockQ);
  if (layout.numQueryTiles !== ceilDiv(geometry.numQueryBlocks, rowsPerTile)) {
    throw new Error('block-sparse prefill: the mask was packed for another query tile');
  }
  const { numHeads, numKvHeads, headDim, numQueries, qStart, scale, kv } = params;
  const pipeline = ctx.pipelines.get(shaderName, {
    HEAD_DIM: headDim,
    NUM_KV_HEADS: numKvHeads,
    PAGE_SIZE: kv.pageSize,
    KV_F16: kv.dtype === 'f16',
    SUBGROUPS: config.subgroups,
    LANES: config.lanesPerRow,
    ROWS_PER_THREAD: config.rowsPerThread,
    ROW_GROUPS: config.threads / config.lanesPerRow,
    KEYS_PER_TILE: config.keyTile,
    KEYS_PER_CHUNK: config.keyChunk,
    BLOCK_Q: geometry.blockQ,
    BLOCK_K: geometry.blockK,
    SEGMENT: config.segment,
    MASK_ROWS: rowsPerTile,
    FETCH_TILES: true,
    RULE_VERTICAL_SLASH: mask.rule === 'vertical-slash',
    RULE_BITSET: mask.rule === 'bitset',
  });
  const uniforms = createUniformBuffer(
    ctx.device,
    [
      numQueries,
      qStart,
      scale * Math.LOG2E,
      numHeads,
      groupSize(params),
      geometry.numQueryBlocks,
      layout.numQueryTiles,
      layout.entriesOffset,
      layout.ruleA,
      layout.ruleB,
      layout.ruleStride,
    ],
    [2],
    'block-sparse prefill params',
  );
  const group = bindGroup(ctx.device, pipeline, [
    uniforms,
    buffers.q,
    buffers.kPool,
    buffers.vPool,
    buffers.pageTable,
    buffers.out,
    mask.words,
    buffers.counts,
  ]);
  const record: RecordDispatches = (pass) => {
    if (geometry.numQueryBlocks === 0) return;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(numHeads, layout.numQueryTiles);
  };
  return { record, dispose: () => uniforms.destroy() };
}

/**
 * Uploads the inputs (K and V packed into paged pools), runs the kernel, reads out and the
 * per-row block counts (head * numQueryBlocks + query block) back.
 */
export async function blockSparsePrefillOnHost(
  ctx: GpuContext,
  input: HostPrefillInput,
  mask: BlockMask,
  config?: BlockSparseTileConfig,
): Promise<{ out: Float32Array; blockCounts: Uint32Array }> {
  const { device } = ctx;
  checkMask(input, mask);
  if (input.numQueries === 0) return { out: new Float32Array(0), blockCounts: new Uint32Array(0) };
  const kvLen = input.qStart + input.numQueries;
  const pageTable =
    input.pageTable ??
    Uint32Array.from({ length: pagesFor(kvLen, input.kv.pageSize) }, (_, i) => i);
  const outputLength = input.numQueries * input.numHeads * input.headDim;
  const rows = input.numHeads * mask.numQueryBlocks;
  const buffers: BlockSparsePrefillBuffers = {
    q: createStorageBuffer(device, input.q, 'prefill q'),
    kPool: createStorageBuffer(device, packPagedPool(input.k, kvLen, input.kv, pageTable).data),
    vPool: createStorageBuffer(device, packPagedPool(input.v, kvLen, input.kv, pageTable).data),
    pageTable: createStorageBuffer(device, pageTable, 'prefill page table'),
    out: createEmptyBuffer(device, outputLength * 4, 'prefill out'),
    counts: createEmptyBuffer(device, rows * 4, 'block-sparse prefill counts'),
  };
  const launch = recordBlockSparsePrefill(ctx, input, mask, buffers, config);
  try {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    launch.record(pass);
    pass.end();
    device.queue.submit([encoder.finish()]);
    const out = await readFloat32(device, buffers.out, outputLength);
    const blockCounts = new Uint32Array(await readBuffer(device, buffers.counts, rows * 4));
    return { out, blockCounts };
  } finally {
    launch.dispose();
    for (const buffer of Object.values(buffers)) buffer.destroy();
  }
}
