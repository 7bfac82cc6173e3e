/** Small helpers around GPU buffers: upload, allocate, read back. */

export type TypedData = Float32Array | Uint32Array | Int32Array;

const storageUsage = () =>
  GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** WebGPU rejects zero-sized bindings; every buffer gets at least 16 bytes. */
function paddedSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 4) * 4);
}

export function createStorageBuffer(device: GPUDevice, data: TypedData, label?: string): GPUBuffer {
  const buffer = device.createBuffer({
    label,
    size: paddedSize(data.byteLength),
    usage: storageUsage(),
  });
  // queue.writeBuffer rather than mappedAtCreation: Dawn in Node crashed on the latter in test workers.
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return buffer;
}

export function createEmptyBuffer(device: GPUDevice, bytes: number, label?: string): GPUBuffer {
  return device.createBuffer({ label, size: paddedSize(bytes), usage: storageUsage() });
}

/** A uniform block's bytes from `values`: u32 (integers), or f32 at `floatIndices`; vec4-padded. */
export function uniformWords(
  values: ArrayLike<number>,
  floatIndices: readonly number[] = [],
): Uint32Array<ArrayBuffer> {
  const bytes = new ArrayBuffer(Math.ceil(Math.max(values.length, 1) / 4) * 16);
  const u32 = new Uint32Array(bytes);
  const f32 = new Float32Array(bytes);
  for (let i = 0; i < values.length; i++) {
    if (floatIndices.includes(i)) f32[i] = values[i];
    else u32[i] = values[i] >>> 0;
  }
  return u32;
}

/** A uniform buffer from 32-bit words; `words` mixes u32 (integers) and f32 (in `floatIndices`). */
export function createUniformBuffer(
  device: GPUDevice,
  values: ArrayLike<number>,
  floatIndices: readonly number[] = [],
  label?: string,
): GPUBuffer {
  const words = uniformWords(values, floatIndices);
  const buffer = device.createBuffer({
    label,
    size: words.byteLength,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, words);
  return buffer;
}

export async function readBuffer(
  device: GPUDevice,
  source: GPUBuffer,
  bytes = source.size,
): Promise<ArrayBuffer> {
  const staging = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(source, 0, staging, 0, bytes);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const copy = staging.getMappedRange().slice(0);
  staging.unmap();
  staging.destroy();
  return copy;
}

export async function readFloat32(
  device: GPUDevice,
  source: GPUBuffer,
  count: number,
): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, source, count * 4));
}

export function bindGroup(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  buffers: GPUBuffer[],
  group = 0,
): GPUBindGroup {
  return device.createBindGroup({
    layout: pipeline.getBindGroupLayout(group),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
}
