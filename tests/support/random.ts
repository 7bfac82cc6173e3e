/** Seeded random data for tests and benchmarks (mulberry32), so failures reproduce. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [-scale, scale). */
export function randomFloats(n: number, seed: number, scale = 1): Float32Array {
  const next = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}

/** Largest |a - b| and largest |b|, over all elements. */
export function maxAbsError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): { error: number; magnitude: number } {
  if (actual.length !== expected.length) throw new Error('length mismatch');
  let error = 0;
  let magnitude = 0;
  for (let i = 0; i < actual.length; i++) {
    error = Math.max(error, Math.abs(actual[i] - expected[i]));
    magnitude = Math.max(magnitude, Math.abs(expected[i]));
  }
  return { error, magnitude };
}
