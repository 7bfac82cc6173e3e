/**
 * WebGPU in Node through Dawn (the `webgpu` package). On a machine without a GPU it falls back to
 * SwiftShader, the software Vulkan that Debian's chromium package ships, so tests and the CLI run
 * anywhere (slowly); VK_ICD_FILENAMES set by the caller always wins.
 */
import { existsSync } from 'node:fs';
import { acquireGpuContext, WebGpuUnavailableError, type GpuContext } from './context';

export const swiftShaderIcd = '/usr/lib/chromium/vk_swiftshader_icd.json';

// Dawn's instance must outlive its devices: if the GPU object is garbage-collected, Dawn's event
// pump dereferences the freed instance and the process crashes. Hold every instance for good.
const liveInstances: GPU[] = [];

async function acquireWithNewInstance(): Promise<GpuContext> {
  const { create, globals } = await import('webgpu');
  // The kernels' launchers use the spec's global enums (GPUBufferUsage, GPUMapMode...).
  Object.assign(globalThis, globals);
  const gpu = create(['disable-dawn-features=timestamp_quantization']);
  liveInstances.push(gpu);
  return acquireGpuContext(gpu);
}

export async function acquireNodeGpuContext(): Promise<GpuContext> {
  try {
    return await acquireWithNewInstance();
  } catch (error) {
    const canFallBack = !process.env.VK_ICD_FILENAMES && existsSync(swiftShaderIcd);
    if (!(error instanceof WebGpuUnavailableError) || !canFallBack) {
      throw new WebGpuUnavailableError(
        "Dawn found no usable WebGPU adapter. On a machine without a GPU install Debian's " +
          `chromium package and set VK_ICD_FILENAMES=${swiftShaderIcd}.`,
      );
    }
    process.env.VK_ICD_FILENAMES = swiftShaderIcd;
    return acquireWithNewInstance();
  }
}
