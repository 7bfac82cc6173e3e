/**
 * What the forward-pass launchers share: the op handle they return, uniforms, large 1-D grids, the
 * start-position buffer, and weights split into row chunks that each fit one storage binding.
 */
import { createStorageBuffer } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import type { RecordDispatches } from '../../gpu/timer';

/** Weights (and embedding tables) as f32, or as f16 pairs packed in u32 along the row. */
export type WeightDtype = 'f32' | 'f16';

/** An encoded op: `record` adds its dispatches to a pass; `dispose` frees what the op allocated. */
export interface ModelOp {
  record: RecordDispatches;
  dispose(): void;
}

/**
 * The absolute position of the first token: a number, or a storage buffer whose first u32 holds
 * it, so a decode step's ops can be recorded once and the position advanced with one writeBuffer.
 */
export type StartPosition = number | GPUBuffer;

/** A uniform buffer of 32-bit words: u32 unless the index is listed in `floats`. */
export function uniformBuffer(
  device: GPUDevice,
  words: readonly number[],
  floats: readonly number[] = [],
  label?: string,
): GPUBuffer {
  const bytes = new ArrayBuffer(Math.ceil(Math.max(words.length, 1) / 4) * 16);
  const u32 = new Uint32Array(bytes);
  const f32 = new Float32Array(bytes);
  words.forEach((value, i) => {
    if (floats.includes(i)) f32[i] = value;
    else u32[i] = value >>> 0;
  });
  const buffer = device.createBuffer({
    label,
    size: bytes.byteLength,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, bytes);
  return buffer;
}

/** Workgroups for `count` flat workgroups, spilling over y past the per-dimension limit. */
export function grid(ctx: GpuContext, count: number): [number, number] {
  const maxX = ctx.caps.maxComputeWorkgroupsPerDimension;
  if (count <= maxX) return [Math.max(count, 1), 1];
  const y = Math.ceil(count / maxX);
  return [Math.ceil(count / y), y];
}

/** The start buffer to bind, and whether the op created it (and must destroy it). */
export function startBuffer(
  device: GPUDevice,
  start: StartPosition,
): { buffer: GPUBuffer; owned: boolean } {
  if (typeof start !== 'number') return { buffer: start, owned: false };
  if (!Number.isInteger(start) || start < 0) throw new Error(`bad start position ${start}`);
  return { buffer: createStorageBuffer(device, Uint32Array.of(start), 'start'), owned: true };
}

/** Rows [rowStart, rowStart + rows) of a weight [outRows][inFeatures], in one storage buffer. */
export interface WeightChunk {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

/** 32-bit words one row of `features` values takes. */
export function rowWords(features: number, dtype: WeightDtype): number {
  if (dtype === 'f16' && features % 2) throw new Error('f16 rows need an even length');
  return dtype === 'f16' ? features / 2 : features;
}

/** Row ranges of at most `maxBytes` each (the storage binding limit by default). */
export function planWeightChunks(
  ctx: GpuContext,
  rows: number,
  features: number,
  dtype: WeightDtype,
  maxBytes = Math.min(ctx.caps.maxStorageBufferBindingSize, ctx.caps.maxBufferSize),
): { rowStart: number; rows: number }[] {
  const rowBytes = rowWords(features, dtype) * 4;
  const rowsPerChunk = Math.floor(maxBytes / rowBytes);
  if (rowsPerChunk < 1) throw new Error(`a row of ${rowBytes} bytes exceeds ${maxBytes} bytes`);
  const chunks: { rowStart: number; rows: number }[] = [];
  for (let rowStart = 0; rowStart < rows; rowStart += rowsPerChunk) {
    chunks.push({ rowStart, rows: Math.min(rowsPerChunk, rows - rowStart) });
  }
  return chunks;
}

/**
 * Uploads a weight [rows][features] (f32 values, or u32 words of f16 pairs) as chunks that each
 * fit one storage binding; `maxBytes` lowers the limit (tests use it to exercise the split path).
 */
export function uploadWeightChunks(
  ctx: GpuContext,
  data: Float32Array | Uint32Array,
  rows: number,
  features: number,
  dtype: WeightDtype,
  maxBytes?: number,
  label = 'weight',
): WeightChunk[] {
  const words = rowWords(features, dtype);
  if (data.length !== rows * words) throw new Error(`${label}: expected ${rows * words} words`);
  return planWeightChunks(ctx, rows, features, dtype, maxBytes).map(({ rowStart, rows: n }) => ({
    buffer: createStorageBuffer(
      ctx.device,
      data.subarray(rowStart * words, (rowStart + n) * words),
      `${label} rows ${rowStart}+${n}`,
    ),
    rowStart,
    rows: n,
  }));
}

/** Submits the ops' dispatches in one compute pass. */
export function submitOps(ctx: GpuContext, ops: readonly ModelOp[]): void {
  const encoder = ctx.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (const op of ops) op.record(pass);
  pass.end();
  ctx.device.queue.submit([encoder.finish()]);
}
