import { beforeAll, describe, expect, it } from 'vitest';
import {
  createEmptyBuffer,
  createStorageBuffer,
  readBuffer,
  readFloat32,
} from '../../src/gpu/buffers';
import type { GpuContext } from '../../src/gpu/context';
import { recordCopy, recordDispatchChainLink } from '../../src/kernels/copy';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

describe('vec4 copy kernel', () => {
  it.each([4, 1024, 4096 * 256 * 4 + 12])('copies %i floats exactly', async (n) => {
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e3);
    const src = createStorageBuffer(ctx.device, data);
    const dst = createEmptyBuffer(ctx.device, data.byteLength);
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    recordCopy(ctx, src, dst)(pass);
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    // Bit for bit; a first-mismatch scan, since a deep compare of 4M elements takes half a minute.
    const copied = new Uint32Array((await readFloat32(ctx.device, dst, n)).buffer);
    const expected = new Uint32Array(data.buffer);
    expect(copied.length).toBe(n);
    expect(copied.findIndex((word, i) => word !== expected[i])).toBe(-1);
  });
});

describe('dependent dispatch chain', () => {
  it('adds one to every cell of its workgroups per link, in one pass', async () => {
    const workgroups = 3;
    const cells = createStorageBuffer(
      ctx.device,
      Uint32Array.from({ length: 4 * 256 }, (_, i) => i),
    );
    const link = recordDispatchChainLink(ctx, cells, workgroups);
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let i = 0; i < 5; i++) link(pass);
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    const after = new Uint32Array(await readBuffer(ctx.device, cells, 4 * 256 * 4));
    const expected = Uint32Array.from({ length: 4 * 256 }, (_, i) =>
      i < workgroups * 256 ? i + 5 : i,
    );
    expect(after.findIndex((word, i) => word !== expected[i])).toBe(-1);
    expect(() => recordDispatchChainLink(ctx, cells, 5)).toThrow(/need/);
    cells.destroy();
  });
});
