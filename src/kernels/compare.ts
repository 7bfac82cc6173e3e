/** How far a kernel's output is from its reference: the measure every kernel check uses. */
export function maxAbsError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): { error: number; magnitude: number } {
  if (actual.length !== expected.length) {
    throw new Error(`output has ${actual.length} values, expected ${expected.length}`);
  }
  let error = 0;
  let magnitude = 0;
  for (let i = 0; i < actual.length; i++) {
    // Math.max propagates NaN, so a NaN anywhere in the output fails any tolerance.
    error = Math.max(error, Math.abs(actual[i] - expected[i]));
    magnitude = Math.max(magnitude, Math.abs(expected[i]));
  }
  return { error, magnitude };
}
