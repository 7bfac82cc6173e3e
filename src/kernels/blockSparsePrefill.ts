/**
 * Block-sparse causal prefill attention (shaders/attention/block_sparse_prefill.wgsl): the dense
 * prefill kernel restricted to a BlockMask (src/methods/reference/masks.ts), with a per (head,
 * query block) count of the key blocks the kernel processed.
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
import { BLOCK_PARTIAL, type BlockMask } from '../methods/reference/masks';
import type { HostPrefillInput, PrefillBuffers, PrefillParams } from './densePrefill';
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
  /** Queries per workgroup: the mask's blockQ. */
  queryTile: number;
  /** Keys per K and V tile in workgroup memory (16, 32 or 64). */
  keyTile: number;
  keyChunk: number;
  /** Keys of one block that one tile load takes: min(blockK, keyTile). */
  segment: number;
  workgroupBytes: number;
}

/**
 * As prefillTileConfig (2 lanes per row, 1 row per lane pair, keys scored 8 at a time, K/V tiles of
 * up to 32 keys: the tiling the H100 ran fastest), with the query tile pinned to blockQ, so 64-query
 * blocks take 128 invocations. The key tile is a power of two so that a tile holds whole 16-key
 * blocks or an exact part of a 64-key block.
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
  const { subgroups, maxWorkgroupStorageBytes, maxInvocationsPerWorkgroup } = ctx.caps;
  const lanesPerRow = subgroups ? 2 : 1;
  const rowsPerThread = 1;
  const keyChunk = 8;
  const threads = (blockQ / rowsPerThread) * lanesPerRow;
  if (threads > maxInvocationsPerWorkgroup) {
    throw new Error(`block-sparse prefill: ${threads} invocations exceed the device's limit`);
  }
  const bytesPerKey = 2 * headDim * 4;
  const keyTile = [32, 16].find(
    (keys) => keys >= keyChunk && keys * bytesPerKey <= maxWorkgroupStorageBytes,
  );
  if (keyTile === undefined) {
    throw new Error(
      `block-sparse prefill: ${maxWorkgroupStorageBytes} B of workgroup memory is too little`,
    );
  }
  return {
    subgroups,
    lanesPerRow,
    rowsPerThread,
    threads,
    queryTile: blockQ,
    keyTile,
    keyChunk,
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
  const { rowStart, keyBlock, blockKind, rule } = mask;
  const entriesOffset = rowStart.length;
  const ruleA = entriesOffset + keyBlock.length;
  let a: Uint32Array = new Uint32Array(0);
  let b: Uint32Array = new Uint32Array(0);
  let ruleStride = 0;
  if (rule.kind === 'vertical-slash') {
    [a, b, ruleStride] = [rule.columns, rule.diagonals, rule.keyWords];
  } else if (rule.kind === 'bitset') {
    [a, b, ruleStride] = [
      new Uint32Array(rule.slot.buffer, rule.slot.byteOffset, rule.slot.length),
      rule.bits,
      rule.wordsPerBlock,
    ];
  } else if (blockKind.includes(BLOCK_PARTIAL)) {
    throw new Error("block-sparse prefill: rule 'none' with partial blocks");
  }
  const ruleB = ruleA + a.length;
  const words = new Uint32Array(ruleB + b.length);
  words.set(rowStart);
  for (let e = 0; e < keyBlock.length; e++)
    words[entriesOffset + e] = keyBlock[e] * 2 + blockKind[e];
  words.set(a, ruleA);
  words.set(b, ruleB);
  return { words, entriesOffset, ruleA, ruleB, ruleStride };
}

function checkMask(params: PrefillParams, mask: BlockMask): void {
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

/**
 * Records the dispatch; the mask is uploaded once, here. dispose() frees what this call created
 * (the mask and uniform buffers), not the caller's buffers.
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
  if (
    config.queryTile !== mask.blockQ ||
    config.segment !== Math.min(mask.blockK, config.keyTile)
  ) {
    throw new Error('block-sparse prefill: the tile configuration does not match the mask blocks');
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
    BLOCK_Q: mask.blockQ,
    BLOCK_K: mask.blockK,
    SEGMENT: config.segment,
    RULE_VERTICAL_SLASH: mask.rule.kind === 'vertical-slash',
    RULE_BITSET: mask.rule.kind === 'bitset',
  });
  const packed = packMask(mask);
  const maskBuffer = createStorageBuffer(ctx.device, packed.words, 'block-sparse prefill mask');
  const uniforms = createUniformBuffer(
    ctx.device,
    [
      numQueries,
      qStart,
      scale * Math.LOG2E,
      numHeads,
      groupSize(params),
      mask.numQueryBlocks,
      packed.entriesOffset,
      packed.ruleA,
      packed.ruleB,
      packed.ruleStride,
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
    maskBuffer,
    buffers.counts,
  ]);
  const record: RecordDispatches = (pass) => {
    if (mask.numQueryBlocks === 0) return;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(numHeads, mask.numQueryBlocks);
  };
  return {
    record,
    dispose: () => {
      maskBuffer.destroy();
      uniforms.destroy();
    },
  };
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
