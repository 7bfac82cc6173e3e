/**
 * WebGPU in Node through Dawn (the `webgpu` package). On a machine without a GPU, point Dawn at
 * SwiftShader with VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (the npm scripts do).
 */
import { acquireGpuContext, type GpuContext } from './context';

// Dawn's instance must outlive its devices: if the GPU object is garbage-collected, Dawn's event
// pump dereferences the freed instance and the process crashes. Hold every instance for good.
const liveInstances: GPU[] = [];

export async function acquireNodeGpuContext(): Promise<GpuContext> {
  const { create, globals } = await import('webgpu');
  // The kernels' launchers use the spec's global enums (GPUBufferUsage, GPUMapMode...).
  Object.assign(globalThis, globals);
  const gpu = create(['disable-dawn-features=timestamp_quantization']);
  liveInstances.push(gpu);
  return acquireGpuContext(gpu);
}
