/**
 * Rotary position embedding, Hugging Face's rotate-half convention, from the inverse frequencies of
 * src/model/loading/config.ts computeRopeInvFreq, for tokens at absolute positions start ..
 * start + tokens - 1. On the GPU it runs inside the KV cache write (kvWrite.ts with `rope`,
 * shaders/model/rope_math.wgsl), which rotates q and k in place; this is its reference.
 */

/**
 * float64 reference on contiguous x [tokens][heads][d], as transformers computes it: the angle
 * rounded to f32 (position * inv_freq in f32), then cos/sin of it.
 */
export function ropeReference(
  x: ArrayLike<number>,
  tokens: number,
  heads: number,
  headDim: number,
  invFreq: Float32Array,
  start: number,
): Float64Array {
  const out = Float64Array.from(x);
  const half = headDim / 2;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround((start + t) * invFreq[i]);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const a = x[base + i];
        const b = x[base + i + half];
        out[base + i] = a * c - b * s;
        out[base + i + half] = b * c + a * s;
      }
    }
  }
  return out;
}
