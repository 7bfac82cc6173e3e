/**
 * GPU time of a recorded sequence of dispatches: timestamp queries around one compute pass that
 * repeats the sequence many times (after a warm-up), divided by the count. Without timestamp-query
 * it falls back to wall-clock time around queue.onSubmittedWorkDone().
 */
import type { GpuContext } from './context';

export type RecordDispatches = (pass: GPUComputePassEncoder) => void;

export interface TimingOptions {
  warmup?: number;
  repeats?: number;
}

export interface Timing {
  /** Milliseconds per repetition. */
  ms: number;
  source: 'timestamp-query' | 'wall-clock';
  repeats: number;
}

function encodeRepeats(
  device: GPUDevice,
  record: RecordDispatches,
  repeats: number,
  timestampWrites?: GPUComputePassTimestampWrites,
): GPUCommandEncoder {
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass(timestampWrites ? { timestampWrites } : {});
  for (let i = 0; i < repeats; i++) record(pass);
  pass.end();
  return encoder;
}

export async function timeDispatches(
  ctx: GpuContext,
  record: RecordDispatches,
  { warmup = 3, repeats = 20 }: TimingOptions = {},
): Promise<Timing> {
  const { device } = ctx;
  device.queue.submit([encodeRepeats(device, record, warmup).finish()]);
  await device.queue.onSubmittedWorkDone();
  if (!ctx.caps.timestampQuery) {
    const start = performance.now();
    device.queue.submit([encodeRepeats(device, record, repeats).finish()]);
    await device.queue.onSubmittedWorkDone();
    return { ms: (performance.now() - start) / repeats, source: 'wall-clock', repeats };
  }
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolve = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const readback = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = encodeRepeats(device, record, repeats, {
    querySet,
    beginningOfPassWriteIndex: 0,
    endOfPassWriteIndex: 1,
  });
  encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
  encoder.copyBufferToBuffer(resolve, 0, readback, 0, 16);
  device.queue.submit([encoder.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const [begin, end] = new BigUint64Array(readback.getMappedRange());
  const ns = Number(end - begin);
  readback.unmap();
  readback.destroy();
  resolve.destroy();
  querySet.destroy();
  return { ms: ns / 1e6 / repeats, source: 'timestamp-query', repeats };
}
