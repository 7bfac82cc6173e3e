import { describe, expect, it } from 'vitest';
import { formatMs, formatPlanning } from '../../src/ui/format';

describe('time and planning figures of a run', () => {
  it('keeps two digits below a millisecond, one below 100 ms, none above', () => {
    expect(formatMs(0.0436)).toBe('0.04 ms');
    expect(formatMs(3.26)).toBe('3.3 ms');
    expect(formatMs(243.6)).toBe('244 ms');
  });

  it('says where each phase planned and omits phases that planned nothing', () => {
    const none = { plannerMs: 0, plannerGpuMs: 0 };
    expect(formatPlanning({ prefill: none, decode: none })).toBeNull();
    expect(formatPlanning({ prefill: {}, decode: {} })).toBeNull();
    expect(
      formatPlanning({ prefill: { plannerMs: 0, plannerGpuMs: 2.5 }, decode: { plannerMs: 12 } }),
    ).toBe('prefill 2.5 ms on the GPU · decode 12.0 ms on the CPU');
  });
});
