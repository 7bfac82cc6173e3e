/** Residual add a += b over `count` floats (a multiple of 4), shaders/model/elementwise.wgsl. */
import { bindGroup } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import { grid, uniformBuffer, type ModelOp } from './common';

const workgroupSize = 256;

export function createResidualAdd(
  ctx: GpuContext,
  params: { count: number },
  buffers: { a: GPUBuffer; b: GPUBuffer },
): ModelOp {
  if (params.count % 4) throw new Error(`residual add: count must be a multiple of 4`);
  const vecs = params.count / 4;
  const pipeline = ctx.pipelines.get('model/elementwise', {});
  const uniforms = uniformBuffer(ctx.device, [vecs], [], 'residual add params');
  const group = bindGroup(ctx.device, pipeline, [uniforms, buffers.a, buffers.b]);
  const workgroups = grid(ctx, Math.ceil(vecs / workgroupSize));
  return {
    record: (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...workgroups);
    },
    dispose: () => uniforms.destroy(),
  };
}
