import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorageBuffer } from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { acquireNodeGpuContext } from '../../src/gpu/node';
import { StepReadback } from '../../src/gpu/stepReadback';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await acquireNodeGpuContext();
});
afterAll(() => ctx.device.destroy());

describe('StepReadback', () => {
  it('hands each request the words its buffer holds at the end of the submit, from one map', async () => {
    const first = createStorageBuffer(ctx.device, Uint32Array.from([1, 2, 3, 4, 5]));
    const second = createStorageBuffer(ctx.device, Uint32Array.from([70, 80, 90]));
    const readback = new StepReadback(ctx.device);
    const three = readback.request(first, 3);
    const all = readback.request(second, 3);
    const one = readback.request(first, 1);
    const encoder = ctx.device.createCommandEncoder();
    // Written after the requests and before the copies: the submit's last state is what is read.
    ctx.device.queue.writeBuffer(second, 4, Uint32Array.of(81));
    readback.record(encoder);
    expect(() => readback.request(first, 1)).toThrow(/after record/);
    ctx.device.queue.submit([encoder.finish()]);
    await readback.resolve();
    expect(Array.from(await three)).toEqual([1, 2, 3]);
    expect(Array.from(await all)).toEqual([70, 81, 90]);
    expect(Array.from(await one)).toEqual([1]);
    readback.destroy();
    first.destroy();
    second.destroy();
  });

  it('records and maps nothing when nothing was requested', async () => {
    const readback = new StepReadback(ctx.device);
    const encoder = ctx.device.createCommandEncoder();
    readback.record(encoder);
    ctx.device.queue.submit([encoder.finish()]);
    await expect(readback.resolve()).resolves.toBeUndefined();
    readback.destroy();
  });

  it('rejects every request when the map fails', async () => {
    const source = createStorageBuffer(ctx.device, Uint32Array.from([1, 2]));
    const readback = new StepReadback(ctx.device);
    const words = readback.request(source, 2);
    readback.record(ctx.device.createCommandEncoder());
    // The copies were never submitted and the staging buffer is gone: mapAsync fails.
    readback.destroy();
    await readback.resolve();
    await expect(words).rejects.toBeDefined();
    source.destroy();
  });
});
