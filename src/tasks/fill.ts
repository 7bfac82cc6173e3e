/** Length fitting: find how much filler a prompt can take without passing its token budget. */

/** Largest n in [lo, hi] for which fits(n) holds, given fits is true up to some n and false after; lo - 1 if none. */
export function largestFitting(lo: number, hi: number, fits: (n: number) => boolean): number {
  let good = lo - 1;
  let bad = hi + 1;
  while (bad - good > 1) {
    const mid = good + Math.floor((bad - good) / 2);
    if (fits(mid)) good = mid;
    else bad = mid;
  }
  return good;
}

/** As largestFitting with no known upper end: doubles from lo until fits fails or cap is reached. */
export function largestFittingUnbounded(
  lo: number,
  cap: number,
  fits: (n: number) => boolean,
): number {
  if (!fits(lo)) return lo - 1;
  let good = lo;
  let step = 1;
  while (good < cap) {
    const next = Math.min(cap, good + step);
    if (!fits(next)) return largestFitting(good + 1, next - 1, fits);
    good = next;
    step *= 2;
  }
  return good;
}

export function tooSmall(task: string, targetTokens: number, needed: string): RangeError {
  return new RangeError(`${task}: ${targetTokens} tokens is too short for ${needed}`);
}
