import { beforeAll, describe, expect, it } from 'vitest';
import { createStorageBuffer } from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { StepReadback } from '../../src/gpu/stepReadback';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

function stagingBuffer(size: number): GPUBuffer {
  return ctx.device.createBuffer({
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
}

describe('StepReadback', () => {
  it('hands each request the words its buffer holds at the end of the submit, from the staging buffer at an offset', async () => {
    const first = createStorageBuffer(ctx.device, Uint32Array.from([1, 2, 3, 4, 5]));
    const second = createStorageBuffer(ctx.device, Uint32Array.from([70, 80, 90]));
    const readback = new StepReadback();
    const three = readback.request(first, 3);
    const all = readback.request(second, 3);
    const one = readback.request(first, 1);
    const none = readback.request(second, 0);
    // A zero-word request still takes one word, so every copy has a size.
    expect(readback.bytes).toBe((3 + 3 + 1 + 1) * 4);
    const offset = 16;
    const staging = stagingBuffer(offset + readback.bytes);
    const encoder = ctx.device.createCommandEncoder();
    // Written after the requests and before the copies: the submit's last state is what is read.
    ctx.device.queue.writeBuffer(second, 4, Uint32Array.of(81));
    readback.record(encoder, staging, offset);
    expect(() => readback.request(first, 1)).toThrow(/after record/);
    ctx.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const mapped = staging.getMappedRange().slice(0);
    staging.unmap();
    readback.deliver(mapped, offset);
    expect(Array.from(await three)).toEqual([1, 2, 3]);
    expect(Array.from(await all)).toEqual([70, 81, 90]);
    expect(Array.from(await one)).toEqual([1]);
    expect(Array.from(await none)).toEqual([]);
    staging.destroy();
    first.destroy();
    second.destroy();
  });

  it('takes no room and records no copy when nothing was requested', async () => {
    const readback = new StepReadback();
    expect(readback.bytes).toBe(0);
    const staging = stagingBuffer(8);
    const encoder = ctx.device.createCommandEncoder();
    ctx.device.queue.writeBuffer(staging, 0, Uint32Array.of(7, 9));
    readback.record(encoder, staging, 0);
    ctx.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    expect(Array.from(new Uint32Array(staging.getMappedRange()))).toEqual([7, 9]);
    staging.destroy();
  });

  it('rejects every request when the step fails', async () => {
    const source = createStorageBuffer(ctx.device, Uint32Array.from([1, 2]));
    const readback = new StepReadback();
    const words = readback.request(source, 2);
    const word = readback.request(source, 1);
    readback.fail(new Error('device lost'));
    await expect(words).rejects.toThrow('device lost');
    await expect(word).rejects.toThrow('device lost');
    source.destroy();
  });
});
