/**
 * The ceilings kernels are judged against: the vec4 copy kernel (bandwidth), an FMA loop (the f32
 * FMA rate WGSL reaches on this adapter), and a chain of dependent dispatches doing nothing (the
 * fixed cost of each dispatch a step is made of).
 */
import { bindGroup } from '../gpu/buffers';
import type { GpuContext } from '../gpu/context';
import type { RecordDispatches } from '../gpu/timer';

const workgroupSize = 256;

/** Records a copy of `src` into `dst` (same size, a multiple of 16 bytes). */
export function recordCopy(ctx: GpuContext, src: GPUBuffer, dst: GPUBuffer): RecordDispatches {
  const pipeline = ctx.pipelines.get('bench/copy_vec4', { WORKGROUP_SIZE: workgroupSize });
  const group = bindGroup(ctx.device, pipeline, [src, dst]);
  const vec4s = src.size / 16;
  const groups = Math.min(Math.ceil(vec4s / workgroupSize), 4096);
  return (pass) => {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(groups);
  };
}

const fmaIterations = 4096;

/** Records `invocations` threads of 8 FMA chains; returns the FLOPs one recording performs. */
export function recordFmaPeak(
  ctx: GpuContext,
  sink: GPUBuffer,
): { record: RecordDispatches; flops: number } {
  const pipeline = ctx.pipelines.get('bench/fma_peak', { ITERATIONS: fmaIterations });
  const group = bindGroup(ctx.device, pipeline, [sink]);
  const invocations = sink.size / 16;
  const groups = Math.ceil(invocations / 256);
  return {
    record: (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(groups);
    },
    flops: groups * 256 * fmaIterations * 8 * 2,
  };
}

/**
 * Records one link of a dependent-dispatch chain: `workgroups` workgroups of 256 invocations, each
 * adding one to its cell of `cells` (at least workgroups * 256 u32). Repeated, every dispatch
 * waits for the one before, so the time per recording is the cost of one dependent dispatch.
 */
export function recordDispatchChainLink(
  ctx: GpuContext,
  cells: GPUBuffer,
  workgroups: number,
): RecordDispatches {
  if (cells.size < workgroups * workgroupSize * 4) {
    throw new Error(
      `dispatch chain: ${workgroups} workgroups need ${workgroups * workgroupSize * 4} bytes`,
    );
  }
  const pipeline = ctx.pipelines.get('bench/dispatch_chain', { WORKGROUP_SIZE: workgroupSize });
  const group = bindGroup(ctx.device, pipeline, [cells]);
  return (pass) => {
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(workgroups);
  };
}
