/**
 * Attention maps (shaders/attention/attention_map.wgsl): the dense causal softmax of a range of
 * queries against one layer's paged K cache, pooled into a [head][query block][key block] grid of
 * mean mass per query (block size 1: token level), and with a BlockMask the part of each cell's
 * mass the mask keeps, from which the recall per head follows. Coordinates as in masks.ts: query
 * block qb holds rows qb*block ..; key block kb holds absolute keys kb*block ...
 */
import {
  bindGroup,
  createEmptyBuffer,
  createStorageBuffer,
  createUniformBuffer,
  readFloat32,
} from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import {
  ceilDiv,
  getBit,
  rowEntries,
  BLOCK_FULL,
  type BlockMask,
} from '../methods/reference/masks';
import { packMask } from './blockSparsePrefill';
import { groupSize, type AttentionShape, type PagedKvLayout } from './layout';
import { packPagedPool, pagesFor } from './pagedKv';

export interface AttentionMapParams extends AttentionShape {
  /** Query rows; row i sits at absolute position qStart + i. */
  numQueries: number;
  qStart: number;
  scale: number;
  kv: PagedKvLayout;
  /** Rows and keys per grid cell; 1 is token level. */
  blockSize: number;
}

export interface AttentionMapBuffers {
  /** q[row][head][dim], f32 (post-RoPE queries). */
  q: GPUBuffer;
  kPool: GPUBuffer;
  pageTable: GPUBuffer;
}

/** A pooled attention map, as the UI and the tests read it. */
export interface AttentionMapGrid {
  numHeads: number;
  numQueries: number;
  qStart: number;
  blockSize: number;
  numQueryBlocks: number;
  numKeyBlocks: number;
  /** [head][query block][key block]: mean over the block's rows of the probability mass. */
  mass: Float32Array;
  /** Same grid: the part of `mass` on elements the kept mask keeps; null without a mask. */
  kept: Float32Array | null;
}

export function attentionMapDims(params: {
  numQueries: number;
  qStart: number;
  blockSize: number;
}): { numQueryBlocks: number; numKeyBlocks: number } {
  return {
    numQueryBlocks: ceilDiv(params.numQueries, params.blockSize),
    numKeyBlocks: ceilDiv(params.qStart + params.numQueries, params.blockSize),
  };
}

/** Grid cells over all heads that a map holds by default: 64 MiB of f32, 128 more for `kept`. */
export const DEFAULT_MAX_CELLS = 1 << 24;

/**
 * The smallest power-of-two block size whose grid over all heads fits in maxCells: token level
 * for short prompts, blocks for long ones (8K tokens, 32 heads: 16-token blocks).
 */
export function blockSizeFor(
  numTokens: number,
  numHeads: number,
  maxCells = DEFAULT_MAX_CELLS,
): number {
  let block = 1;
  while (numHeads * Math.ceil(numTokens / block) ** 2 > maxCells) block *= 2;
  return block;
}

/** Throws saying what is wrong with the request and what to change. */
export function checkAttentionMapRequest(
  ctx: GpuContext,
  params: AttentionMapParams,
  keptMask?: BlockMask,
): void {
  const { numQueries, qStart, blockSize, numHeads } = params;
  if (!Number.isInteger(numQueries) || numQueries < 1) {
    throw new Error(
      `attention map: the query range must hold at least one query, got ${numQueries}`,
    );
  }
  if (!Number.isInteger(qStart) || qStart < 0) {
    throw new Error(`attention map: the first query position must be >= 0, got ${qStart}`);
  }
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    throw new Error(`attention map: the block size must be a positive integer, got ${blockSize}`);
  }
  if (params.kv.numKvHeads !== params.numKvHeads || params.kv.headDim !== params.headDim) {
    throw new Error('attention map: the KV layout does not match the attention shape');
  }
  groupSize(params);
  const { numQueryBlocks, numKeyBlocks } = attentionMapDims(params);
  const maxGroups = ctx.caps.maxComputeWorkgroupsPerDimension;
  const gridBytes = numHeads * numQueryBlocks * numKeyBlocks * 4;
  if (numQueryBlocks > maxGroups || gridBytes > ctx.caps.maxStorageBufferBindingSize) {
    throw new Error(
      `attention map: a ${numQueryBlocks} x ${numKeyBlocks} grid per head is too large for this ` +
        `GPU; choose a larger block size (now ${blockSize}) or a shorter query range`,
    );
  }
  if (keptMask) {
    if (
      keptMask.numHeads !== numHeads ||
      keptMask.numQueries !== numQueries ||
      keptMask.qStart !== qStart
    ) {
      throw new Error(
        `attention map: the kept mask covers ${keptMask.numHeads} heads, queries ` +
          `${keptMask.qStart} .. ${keptMask.qStart + keptMask.numQueries - 1}; the map ` +
          `${numHeads} heads, queries ${qStart} .. ${qStart + numQueries - 1}: build the mask ` +
          'for the same heads and query range',
      );
    }
  }
}

const shaderName = 'attention/attention_map';
const workgroup = 64;

/**
 * Runs the stats and pool stages on buffers already on the GPU; returns the grid read back. The
 * caller's buffers are untouched; what this call allocates it frees.
 */
export async function computeAttentionMap(
  ctx: GpuContext,
  params: AttentionMapParams,
  buffers: AttentionMapBuffers,
  keptMask?: BlockMask,
): Promise<AttentionMapGrid> {
  checkAttentionMapRequest(ctx, params, keptMask);
  const { device } = ctx;
  const { numHeads, numKvHeads, headDim, numQueries, qStart, scale, kv, blockSize } = params;
  const { numQueryBlocks, numKeyBlocks } = attentionMapDims(params);
  const cells = numHeads * numQueryBlocks * numKeyBlocks;
  const packed = keptMask ? packMask(keptMask) : null;
  const shapeDefines = {
    HEAD_DIM: headDim,
    NUM_KV_HEADS: numKvHeads,
    PAGE_SIZE: kv.pageSize,
    KV_F16: kv.dtype === 'f16',
  };
  const statsPipeline = ctx.pipelines.get(shaderName, { ...shapeDefines, STATS: true });
  const poolPipeline = ctx.pipelines.get(shaderName, {
    ...shapeDefines,
    POOL: true,
    MASK: keptMask !== undefined,
    RULE_VERTICAL_SLASH: keptMask?.rule.kind === 'vertical-slash',
    RULE_BITSET: keptMask?.rule.kind === 'bitset',
  });
  const uniforms = createUniformBuffer(
    device,
    [
      numQueries,
      qStart,
      scale * Math.LOG2E,
      numHeads,
      groupSize(params),
      blockSize,
      numQueryBlocks,
      numKeyBlocks,
      keptMask?.blockQ ?? 1,
      keptMask?.blockK ?? 1,
      keptMask?.numQueryBlocks ?? 0,
      packed?.entriesOffset ?? 0,
      packed?.ruleA ?? 0,
      packed?.ruleB ?? 0,
      packed?.ruleStride ?? 0,
    ],
    [2],
    'attention map params',
  );
  const rowStats = createEmptyBuffer(device, numHeads * numQueries * 8, 'attention map row stats');
  const mass = createEmptyBuffer(device, cells * 4, 'attention map mass');
  const kept = packed ? createEmptyBuffer(device, cells * 4, 'attention map kept') : null;
  const maskBuffer = packed
    ? createStorageBuffer(device, packed.words, 'attention map mask')
    : null;
  try {
    const shared = [uniforms, buffers.q, buffers.kPool, buffers.pageTable];
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(statsPipeline);
    pass.setBindGroup(0, bindGroup(device, statsPipeline, [...shared, rowStats]));
    pass.dispatchWorkgroups(ceilDiv(numQueries, workgroup), numHeads);
    pass.setPipeline(poolPipeline);
    const poolBuffers = [
      ...shared,
      rowStats,
      mass,
      ...(kept && maskBuffer ? [kept, maskBuffer] : []),
    ];
    pass.setBindGroup(0, bindGroup(device, poolPipeline, poolBuffers));
    pass.dispatchWorkgroups(ceilDiv(numKeyBlocks, workgroup), numQueryBlocks, numHeads);
    pass.end();
    device.queue.submit([encoder.finish()]);
    return {
      numHeads,
      numQueries,
      qStart,
      blockSize,
      numQueryBlocks,
      numKeyBlocks,
      mass: await readFloat32(device, mass, cells),
      kept: kept ? await readFloat32(device, kept, cells) : null,
    };
  } finally {
    for (const buffer of [uniforms, rowStats, mass, kept, maskBuffer]) buffer?.destroy();
  }
}

export interface HostAttentionMapInput extends AttentionMapParams {
  q: Float32Array;
  /** Contiguous token x kvHead x dim, qStart + numQueries tokens. */
  k: Float32Array;
  /** Logical to physical pages; the identity when absent. */
  pageTable?: Uint32Array;
}

/** Uploads q and K (packed into a paged pool), computes the map and frees the uploads. */
export async function attentionMapOnHost(
  ctx: GpuContext,
  input: HostAttentionMapInput,
  keptMask?: BlockMask,
): Promise<AttentionMapGrid> {
  const kvLen = input.qStart + input.numQueries;
  const pageTable =
    input.pageTable ??
    Uint32Array.from({ length: pagesFor(kvLen, input.kv.pageSize) }, (_, i) => i);
  const buffers: AttentionMapBuffers = {
    q: createStorageBuffer(ctx.device, input.q, 'attention map q'),
    kPool: createStorageBuffer(
      ctx.device,
      packPagedPool(input.k, kvLen, input.kv, pageTable).data,
      'attention map k pool',
    ),
    pageTable: createStorageBuffer(ctx.device, pageTable, 'attention map page table'),
  };
  try {
    return await computeAttentionMap(ctx, input, buffers, keptMask);
  } finally {
    for (const buffer of Object.values(buffers)) buffer.destroy();
  }
}

/** Rows of query block qb (the last block may be short). */
export function blockRows(grid: AttentionMapGrid, qb: number): number {
  return Math.min(grid.blockSize, grid.numQueries - qb * grid.blockSize);
}

/**
 * Recall per head: the dense attention mass on the elements the mask keeps, averaged over the
 * query rows (1 when the mask keeps everything that carries mass).
 */
export function recallPerHead(grid: AttentionMapGrid): Float64Array {
  const { kept } = grid;
  if (!kept) throw new Error('recall needs a map computed with a kept mask');
  const recall = new Float64Array(grid.numHeads);
  for (let h = 0; h < grid.numHeads; h++) {
    let sum = 0;
    for (let qb = 0; qb < grid.numQueryBlocks; qb++) {
      const rows = blockRows(grid, qb);
      const base = (h * grid.numQueryBlocks + qb) * grid.numKeyBlocks;
      for (let kb = 0; kb < grid.numKeyBlocks; kb++) sum += kept[base + kb] * rows;
    }
    recall[h] = sum / grid.numQueries;
  }
  return recall;
}

/**
 * Per head, the share of causal (query, key) elements the mask keeps: the head's budget. Full
 * blocks are counted in closed form, partial ones element by element.
 */
export function keptSharePerHead(mask: BlockMask): Float64Array {
  const { numHeads, numQueries, qStart, blockQ, blockK, rule } = mask;
  const causalPerHead = numQueries * (qStart + 1) + (numQueries * (numQueries - 1)) / 2;
  const share = new Float64Array(numHeads);
  for (let h = 0; h < numHeads; h++) {
    let kept = 0;
    for (let qb = 0; qb < mask.numQueryBlocks; qb++) {
      const [start, end] = rowEntries(mask, h, qb);
      const rowEnd = Math.min(numQueries, (qb + 1) * blockQ);
      for (let e = start; e < end; e++) {
        const firstKey = mask.keyBlock[e] * blockK;
        for (let i = qb * blockQ; i < rowEnd; i++) {
          const keyEnd = Math.min(firstKey + blockK, qStart + i + 1);
          if (mask.blockKind[e] === BLOCK_FULL) {
            kept += Math.max(0, keyEnd - firstKey);
            continue;
          }
          for (let j = firstKey; j < keyEnd; j++) {
            if (rule.kind === 'vertical-slash') {
              const words = h * rule.keyWords;
              if (getBit(rule.columns, words, j) || getBit(rule.diagonals, words, qStart + i - j))
                kept++;
            } else if (rule.kind === 'bitset') {
              const bit = (i - qb * blockQ) * blockK + (j - firstKey);
              if (getBit(rule.bits, rule.slot[e] * rule.wordsPerBlock, bit)) kept++;
            }
          }
        }
      }
    }
    share[h] = kept / causalPerHead;
  }
  return share;
}
