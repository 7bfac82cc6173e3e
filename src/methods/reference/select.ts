/** Deterministic selection helpers shared by the method references. */

/**
 * Indices of the k largest scores, best first; ties go to the lower index so that CPU and GPU
 * planners agree exactly (torch.topk leaves ties unspecified). k is clamped to scores.length.
 */
export function topKIndices(scores: ArrayLike<number>, k: number): number[] {
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, Math.max(0, Math.min(k, scores.length)));
}

/**
 * The integer n in [lo, hi] whose value(n) is closest to target, for value non-increasing in n
 * (sparsity as the budget grows); ties go to the lower n. Binary search: O(log(hi - lo)) calls.
 */
export function closestOnDecreasing(
  lo: number,
  hi: number,
  target: number,
  value: (n: number) => number,
): number {
  let left = lo;
  let right = hi;
  while (left < right) {
    const mid = Math.floor((left + right) / 2);
    if (value(mid) <= target) right = mid;
    else left = mid + 1;
  }
  if (left > lo && Math.abs(value(left - 1) - target) <= Math.abs(value(left) - target)) {
    return left - 1;
  }
  return left;
}
