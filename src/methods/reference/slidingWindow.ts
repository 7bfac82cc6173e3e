/**
 * Sliding window + attention sinks (StreamingLLM): query position p keeps keys j with
 * p - j < window (the window includes the query itself) and the first `sinks` keys. It is the
 * vertical-slash rule with fixed columns 0 .. sinks-1 and diagonals 0 .. window-1, so GPU kernels
 * need no extra predicate.
 */
import { causalTotal, verticalSlashMask, type BlockMask, type MaskShape } from './masks';
import { closestOnDecreasing } from './select';

export const SLIDING_WINDOW_DEFAULTS = { window: 1024, sinks: 4, blockQ: 64, blockK: 64 } as const;

export interface SlidingWindowParams {
  window: number;
  sinks: number;
  blockQ: number;
  blockK: number;
}

function range(n: number): number[] {
  return Array.from({ length: Math.max(0, n) }, (_, i) => i);
}

export function slidingWindow(
  shape: MaskShape,
  params: SlidingWindowParams = SLIDING_WINDOW_DEFAULTS,
): BlockMask {
  return verticalSlashMask(
    { ...shape, blockQ: params.blockQ, blockK: params.blockK },
    () => range(params.sinks),
    () => range(params.window),
  );
}

/** Exact kept interactions for one head, by position only. */
export function keptCount(shape: MaskShape, window: number, sinks: number): number {
  let kept = 0;
  for (let i = 0; i < shape.numQueries; i++) {
    const keys = shape.qStart + i + 1;
    const inWindow = Math.min(keys, window);
    kept += inWindow + Math.max(0, Math.min(sinks, keys - inWindow));
  }
  return kept;
}

/**
 * The keys a decode query over kvLen keys skips: [start, start + length) = [sinks, kvLen - window),
 * empty when the window and the sinks cover the cache. Decode reads every other key.
 */
export function decodeGap(
  kvLen: number,
  window: number,
  sinks: number,
): { start: number; length: number } {
  const start = Math.min(sinks, kvLen);
  return { start, length: Math.max(start, kvLen - window) - start };
}

/** The window whose exact sparsity on a prefill of `length` tokens is closest to s. */
export function paramsForSparsity(s: number, length: number): SlidingWindowParams {
  const shape = { numHeads: 1, numQueries: length, qStart: 0 };
  const total = causalTotal(shape);
  const { sinks } = SLIDING_WINDOW_DEFAULTS;
  const window = closestOnDecreasing(1, length, s, (w) => 1 - keptCount(shape, w, sinks) / total);
  return { ...SLIDING_WINDOW_DEFAULTS, window };
}
