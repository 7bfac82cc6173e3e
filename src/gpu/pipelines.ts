import { composeShader, type ShaderDefines } from './shaders';

/** Compiles each (shader, defines) pair once per device. */
export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(private readonly device: GPUDevice) {}

  get(shader: string, defines: ShaderDefines = {}, entryPoint = 'main'): GPUComputePipeline {
    const key = `${shader}|${entryPoint}|${JSON.stringify(defines)}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.device.createShaderModule({
        label: shader,
        code: composeShader(shader, defines),
      });
      pipeline = this.device.createComputePipeline({
        label: key,
        layout: 'auto',
        compute: { module, entryPoint },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }
}
