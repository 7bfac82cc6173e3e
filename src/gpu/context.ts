/**
 * One place that turns a WebGPU `GPU` object (the browser's navigator.gpu or Dawn's in Node) into a
 * device with every optional feature and limit the kernels can use, and records what it got so the
 * launchers can pick kernel variants.
 */
import { PipelineCache } from './pipelines';

export interface GpuCapabilities {
  timestampQuery: boolean;
  subgroups: boolean;
  shaderF16: boolean;
  maxWorkgroupStorageBytes: number;
  maxInvocationsPerWorkgroup: number;
  maxWorkgroupSizeX: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupsPerDimension: number;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  isFallbackAdapter: boolean;
}

export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterSummary;
  caps: GpuCapabilities;
  pipelines: PipelineCache;
  /** Resolves when the device is lost, with the reason; the app recovers by acquiring anew. */
  lost: Promise<GPUDeviceLostInfo>;
}

const optionalFeatures: GPUFeatureName[] = ['timestamp-query', 'subgroups', 'shader-f16'];

const wantedLimits = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

export class WebGpuUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebGpuUnavailableError';
  }
}

export async function acquireGpuContext(
  gpu: GPU | undefined,
  powerPreference: GPUPowerPreference = 'high-performance',
): Promise<GpuContext> {
  if (!gpu) {
    throw new WebGpuUnavailableError(
      'WebGPU is not available here. Use a browser that has it: Chrome or Edge 113+, ' +
        'Firefox 141+ on Windows, or Safari 26+.',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) {
    throw new WebGpuUnavailableError(
      'This browser has WebGPU but found no usable GPU adapter. Update the GPU driver, or enable ' +
        'hardware acceleration in the browser settings.',
    );
  }
  const requiredFeatures = optionalFeatures.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of wantedLimits) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const info = adapter.info;
  const summary: AdapterSummary = {
    vendor: info.vendor || 'unknown vendor',
    architecture: info.architecture || 'unknown architecture',
    device: info.device || '',
    description: info.description || '',
    features: [...adapter.features].map(String).sort(),
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
  };
  const has = (f: GPUFeatureName) => device.features.has(f);
  const caps: GpuCapabilities = {
    timestampQuery: has('timestamp-query'),
    subgroups: has('subgroups'),
    shaderF16: has('shader-f16'),
    maxWorkgroupStorageBytes: device.limits.maxComputeWorkgroupStorageSize,
    maxInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
    maxWorkgroupSizeX: device.limits.maxComputeWorkgroupSizeX,
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
    maxBufferSize: device.limits.maxBufferSize,
    maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
  };
  device.addEventListener('uncapturederror', (event) => {
    console.error('WebGPU error:', (event as GPUUncapturedErrorEvent).error.message);
  });
  return {
    device,
    adapter: summary,
    caps,
    pipelines: new PipelineCache(device),
    lost: device.lost,
  };
}
