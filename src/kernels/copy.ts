/** The vec4 copy kernel: the bandwidth ceiling that decode kernels are judged against. */
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
