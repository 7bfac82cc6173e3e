/** A ResultStore in memory: for tests, and for runs that need no persistence. */
import type { ResultStore, SampleResult } from '../sweepTypes';

export class MemoryResultStore implements ResultStore {
  private readonly results = new Map<string, SampleResult>();

  constructor(initial: readonly SampleResult[] = []) {
    for (const result of initial) this.results.set(result.key, structuredClone(result));
  }

  async load(): Promise<SampleResult[]> {
    return [...this.results.values()].map((r) => structuredClone(r));
  }

  async put(result: SampleResult): Promise<void> {
    this.results.set(result.key, structuredClone(result));
  }

  /** Every stored result (copies), in insertion order of their keys. */
  all(): SampleResult[] {
    return [...this.results.values()].map((r) => structuredClone(r));
  }
}
