import { beforeAll, describe, expect, it } from 'vitest';
import { readBuffer } from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { StepScratch } from '../../src/gpu/scratch';
import { decodeReduceDefines } from '../../src/kernels/denseDecode';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

const words = async (buffer: GPUBuffer, count: number) =>
  Array.from(new Uint32Array(await readBuffer(ctx.device, buffer, count * 4)));

/** Submits the step's clears, as the model does first in a step's encoder. */
function beginStep(scratch: StepScratch) {
  const encoder = ctx.device.createCommandEncoder();
  scratch.recordClears(encoder);
  ctx.device.queue.submit([encoder.finish()]);
}

describe('StepScratch', () => {
  it('hands a role one buffer, grows it on a larger request, and clears a kept one when a step begins', async () => {
    const scratch = new StepScratch(ctx.device);
    const first = scratch.get('partials', 16);
    expect(scratch.get('partials', 8)).toBe(first);
    ctx.device.queue.writeBuffer(first, 0, Uint32Array.of(1, 2, 3, 4));
    beginStep(scratch);
    // Made this step: nothing to clear, what was written stays.
    expect(await words(first, 4)).toEqual([1, 2, 3, 4]);
    scratch.endStep();

    expect(scratch.get('partials', 16)).toBe(first);
    beginStep(scratch);
    expect(await words(first, 4)).toEqual([0, 0, 0, 0]);
    const grown = scratch.get('partials', 24);
    expect(grown).not.toBe(first);
    expect(grown.size).toBeGreaterThanOrEqual(32);
    scratch.endStep();
    expect(scratch.get('partials', 24)).toBe(grown);
    scratch.endStep();
    // A step that does not use a role frees its buffer.
    scratch.get('other', 16);
    scratch.endStep();
    expect(scratch.get('partials', 24)).not.toBe(grown);
    scratch.endStep();
    scratch.destroy();
  });

  it('writes inputs into kept buffers: one per distinct content in a step, rewritten the next step', async () => {
    const scratch = new StepScratch(ctx.device);
    const a = scratch.storage('gaps', Uint32Array.of(5, 6, 7, 8));
    expect(scratch.storage('gaps', Uint32Array.of(5, 6, 7, 8))).toBe(a);
    const b = scratch.storage('gaps', Uint32Array.of(9, 9, 9, 9));
    expect(b).not.toBe(a);
    expect(await words(a, 4)).toEqual([5, 6, 7, 8]);
    expect(await words(b, 4)).toEqual([9, 9, 9, 9]);
    scratch.endStep();

    const next = scratch.storage('gaps', Uint32Array.of(1, 2, 3, 4));
    expect(next).toBe(a);
    expect(await words(next, 4)).toEqual([1, 2, 3, 4]);
    const uniform = scratch.uniform('params', [3, 0.5], [1]);
    expect(scratch.uniform('params', [3, 0.5], [1])).toBe(uniform);
    expect(scratch.uniform('params', [3, 0.25], [1])).not.toBe(uniform);
    scratch.endStep();
    scratch.destroy();
  });

  it('makes a bind group once for the same pipeline and buffers, and forgets one a step did not use', () => {
    const scratch = new StepScratch(ctx.device);
    const pipeline = ctx.pipelines.get('attention/dense_decode_reduce', decodeReduceDefines(64));
    const buffers = [
      scratch.uniform('params', [1, 2, 3, 4]),
      scratch.get('out', 64),
      scratch.get('ml', 64),
      scratch.get('final', 64),
    ];
    const group = scratch.bindGroup(pipeline, buffers);
    expect(scratch.bindGroup(pipeline, buffers)).toBe(group);
    expect(scratch.bindGroup(pipeline, [buffers[0], buffers[2], buffers[1], buffers[3]])).not.toBe(
      group,
    );
    scratch.endStep();
    expect(scratch.bindGroup(pipeline, buffers)).toBe(group);
    scratch.endStep();
    scratch.endStep();
    expect(scratch.bindGroup(pipeline, buffers)).not.toBe(group);
    scratch.destroy();
  });
});
