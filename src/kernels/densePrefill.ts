/**
 * Dense causal prefill attention (shaders/attention/dense_prefill.wgsl): the tile configuration
 * chosen from the device's limits, a recorder for benchmarks and the engine, and a host round trip
 * for tests.
 */
import {
  bindGroup,
  createEmptyBuffer,
  createStorageBuffer,
  createUniformBuffer,
  readFloat32,
} from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import type { RecordDispatches } from '../gpu/timer';
import { groupSize, type AttentionShape, type PagedKvLayout } from './layout';
import { packPagedPool, pagesFor } from './pagedKv';

export interface PrefillParams extends AttentionShape {
  numQueries: number;
  qStart: number;
  scale: number;
  kv: PagedKvLayout;
}

export interface PrefillBuffers {
  q: GPUBuffer;
  kPool: GPUBuffer;
  vPool: GPUBuffer;
  pageTable: GPUBuffer;
  out: GPUBuffer;
}

export interface HostPrefillInput extends PrefillParams {
  q: Float32Array;
  /** Contiguous token x kvHead x dim, kvLen = qStart + numQueries tokens. */
  k: Float32Array;
  v: Float32Array;
  /** Logical to physical pages; the identity when absent. */
  pageTable?: Uint32Array;
}

export interface PrefillTileConfig {
  /** Whether rows are shared by several invocations that add their dot products by shuffles. */
  subgroups: boolean;
  /** Invocations that share a query row, each owning 1 / lanesPerRow of the head dim. */
  lanesPerRow: number;
  /** Query rows each invocation (lane group) holds in registers. */
  rowsPerThread: number;
  /** Invocations per workgroup. */
  threads: number;
  /** Queries per workgroup: threads / lanesPerRow * rowsPerThread. */
  queryTile: number;
  /** Keys per K and V tile in workgroup memory. */
  keyTile: number;
  /** Keys scored together between online-softmax updates. */
  keyChunk: number;
  /** Workgroup memory the K and V tiles take. */
  workgroupBytes: number;
}

/**
 * Chosen on the H100 with `npm run bench -- --tune` (L 4K, docs/PERFORMANCE.md): 2 lanes per query
 * row, 1 row per lane pair, 256 invocations (128 queries per workgroup), keys scored 8 at a time and
 * K/V tiles of 32 keys ran d 128 in 6.9 ms (4 lanes x 2 rows at 128 invocations: 14.9 ms) and
 * d 64 in 1.4 ms (2.6 ms). Fewer lanes per row mean fewer shuffles and exp2 repeated by fewer lanes;
 * more rows per invocation cost registers that the H100 then lacks for occupancy.
 */
const threadsPerWorkgroup = 256;
const maxKeyTile = 32;
const keyChunk = 8;

/**
 * The query tile is bounded by registers, the key tile by workgroup memory. With subgroups, 2 lanes
 * share each row and hold headDim / 2 of its q and o (64 + 64 floats at d = 128); without, one
 * invocation holds a whole row. The K and V tiles take as many keys as the device's workgroup
 * memory holds (a multiple of the chunk), up to 32.
 */
export function prefillTileConfig(ctx: GpuContext, headDim: number): PrefillTileConfig {
  if (headDim % 16 !== 0) throw new Error(`dense prefill needs headDim % 16 == 0, got ${headDim}`);
  const { subgroups, maxWorkgroupStorageBytes, maxInvocationsPerWorkgroup } = ctx.caps;
  const lanesPerRow = subgroups ? 2 : 1;
  const rowsPerThread = 1;
  const threads = Math.min(threadsPerWorkgroup, maxInvocationsPerWorkgroup);
  const bytesPerKey = 2 * headDim * 4;
  const fittingKeys = Math.floor(maxWorkgroupStorageBytes / bytesPerKey);
  const keyTile = Math.min(maxKeyTile, Math.floor(fittingKeys / keyChunk) * keyChunk);
  if (keyTile < keyChunk) {
    throw new Error(
      `dense prefill: ${maxWorkgroupStorageBytes} B of workgroup memory is too little`,
    );
  }
  return {
    subgroups,
    lanesPerRow,
    rowsPerThread,
    threads,
    queryTile: (threads / lanesPerRow) * rowsPerThread,
    keyTile,
    keyChunk,
    workgroupBytes: keyTile * bytesPerKey,
  };
}

const shaderName = 'attention/dense_prefill';
/**
 * BLASST's additions to the dense prefill dispatch (the shader's `#if BLASST` branch): uniforms
 * after the dense ones (those at `floatIndices` within them are f32) and the skip counters.
 */
export interface PrefillSkipping {
  uniforms: number[];
  floatIndices: number[];
  counts: GPUBuffer;
}

/**
 * The recorder and the uniform buffer it owns (densePrefillOnHost destroys it afterwards); with
 * `skipping`, the same kernel with BLASST's block skipping.
 */
export function buildDensePrefill(
  ctx: GpuContext,
  params: PrefillParams,
  buffers: PrefillBuffers,
  config: PrefillTileConfig,
  skipping?: PrefillSkipping,
): { record: RecordDispatches; uniforms: GPUBuffer } {
  const { numHeads, numKvHeads, headDim, numQueries, qStart, scale, kv } = params;
  if (kv.numKvHeads !== numKvHeads || kv.headDim !== headDim) {
    throw new Error('dense prefill: the KV layout does not match the attention shape');
  }
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
    ...(skipping ? { BLASST: true, FETCH_TILES: true } : {}),
  });
  const dense = [numQueries, qStart, scale * Math.LOG2E, numHeads, groupSize(params)];
  const uniforms = createUniformBuffer(
    ctx.device,
    [...dense, ...(skipping?.uniforms ?? [])],
    [2, ...(skipping?.floatIndices ?? []).map((i) => dense.length + i)],
    skipping ? 'blasst prefill params' : 'dense prefill params',
  );
  const group = bindGroup(ctx.device, pipeline, [
    uniforms,
    buffers.q,
    buffers.kPool,
    buffers.vPool,
    buffers.pageTable,
    buffers.out,
    ...(skipping ? [skipping.counts] : []),
  ]);
  const queryTiles = Math.ceil(numQueries / config.queryTile);
  const record: RecordDispatches = (pass) => {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(numHeads, queryTiles);
  };
  return { record, uniforms };
}

/**
 * The prefill dispatch and a dispose() that frees the uniform buffer it allocated: for callers that
 * build one per layer and chunk (the model runtime).
 */
export function createDensePrefill(
  ctx: GpuContext,
  params: PrefillParams,
  buffers: PrefillBuffers,
  config: PrefillTileConfig = prefillTileConfig(ctx, params.headDim),
): { record: RecordDispatches; dispose: () => void } {
  const { record, uniforms } = buildDensePrefill(ctx, params, buffers, config);
  return { record, dispose: () => uniforms.destroy() };
}

/** Records the prefill dispatch; `config` defaults to prefillTileConfig (benchmarks may vary it). */
export function recordDensePrefill(
  ctx: GpuContext,
  params: PrefillParams,
  buffers: PrefillBuffers,
  config: PrefillTileConfig = prefillTileConfig(ctx, params.headDim),
): RecordDispatches {
  return buildDensePrefill(ctx, params, buffers, config).record;
}

/** Uploads the inputs (K and V packed into paged pools), runs the kernel and reads out back. */
export async function densePrefillOnHost(
  ctx: GpuContext,
  input: HostPrefillInput,
  config: PrefillTileConfig = prefillTileConfig(ctx, input.headDim),
): Promise<Float32Array> {
  const { device } = ctx;
  if (input.numQueries === 0) return new Float32Array(0);
  const kvLen = input.qStart + input.numQueries;
  const pageTable =
    input.pageTable ??
    Uint32Array.from({ length: pagesFor(kvLen, input.kv.pageSize) }, (_, i) => i);
  const outputLength = input.numQueries * input.numHeads * input.headDim;
  const buffers: PrefillBuffers = {
    q: createStorageBuffer(device, input.q, 'prefill q'),
    kPool: createStorageBuffer(device, packPagedPool(input.k, kvLen, input.kv, pageTable).data),
    vPool: createStorageBuffer(device, packPagedPool(input.v, kvLen, input.kv, pageTable).data),
    pageTable: createStorageBuffer(device, pageTable, 'prefill page table'),
    out: createEmptyBuffer(device, outputLength * 4, 'prefill out'),
  };
  const { record, uniforms } = buildDensePrefill(ctx, input, buffers, config);
  try {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    record(pass);
    pass.end();
    device.queue.submit([encoder.finish()]);
    return await readFloat32(device, buffers.out, outputLength);
  } finally {
    for (const buffer of [...Object.values(buffers), uniforms]) buffer.destroy();
  }
}
