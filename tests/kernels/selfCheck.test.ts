import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { runSelfCheck } from '../../src/engine/selfCheck';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await sharedGpuContext();
});

describe('the page self-check, run in Node', () => {
  it('passes every case with a measured error under its tolerance', async () => {
    const results = await runSelfCheck(ctx);
    expect(results.length).toBeGreaterThanOrEqual(4);
    for (const result of results) {
      expect(result.error).toBeUndefined();
      expect(result.relativeError).toBeLessThanOrEqual(result.tolerance);
      expect(result.passed).toBe(true);
    }
  });
});
