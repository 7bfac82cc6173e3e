/**
 * f16 on the CPU side: conversion and the packing the kernels read with unpack2x16float (two halves
 * per u32, the lower index in the low 16 bits). Works on every adapter, with or without shader-f16.
 */
const scratch = new DataView(new ArrayBuffer(4));

export function float32ToFloat16Bits(value: number): number {
  scratch.setFloat32(0, value);
  const bits = scratch.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Packs an even-length f32 array into u32 words of two f16 values. */
export function packFloat16Pairs(values: ArrayLike<number>): Uint32Array {
  if (values.length % 2) throw new Error('packFloat16Pairs needs an even number of values');
  const words = new Uint32Array(values.length / 2);
  for (let i = 0; i < words.length; i++) {
    words[i] =
      (float32ToFloat16Bits(values[2 * i]) | (float32ToFloat16Bits(values[2 * i + 1]) << 16)) >>> 0;
  }
  return words;
}

/** The f32 values the GPU sees after f16 rounding: what a reference should use for f16 KV. */
export function roundToFloat16(values: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++)
    out[i] = float16BitsToFloat32(float32ToFloat16Bits(values[i]));
  return out;
}
