/**
 * The Sparse Frontier's cost model (for isoCost plots), exactly as docs/METHODS.md states it.
 * Pure arithmetic; every function returns totals over all layers and the per-layer value.
 *
 * Symbols: L sequence length (prompt tokens for prefill, KV cache length for decode), h query
 * heads, n_kv KV heads, d_h head dim, d model width, rho = 1 - sparsity.
 *
 * Prefill, per layer:
 * - attention FLOPs = rho * (4 h L^2 d_h + 3 h L^2) over the FULL L x L square (the paper's
 *   convention: 4 h L^2 d_h = 2 for Q.K^T + 2 for P.V, 3 h L^2 = softmax). With
 *   region 'causal' we count only the causal triangle: exactly half of that. Results say which
 *   region was counted.
 * - projection FLOPs = 2 L d (2d + 2 d_h n_kv) (Q and O: d x d each, K and V: d x d_h n_kv each);
 *   they do not shrink with sparsity.
 * - method overhead: Vertical-Slash / FlexPrefill estimation pass over q = min(last_q, L) queries
 *   against all L keys, per layer: h * q * L * (2 d_h + 5) FLOPs =
 *   2 h q L d_h (Q.K^T) + 3 h q L (softmax, same per-score count as the paper's 3 h L^2)
 *   + 2 h q L (column sums for verticals and diagonal sums for slashes). Counted over the full
 *   q x L rectangle (not halved), independent of rho and of `region`.
 *
 * Decode, per layer and per generated token:
 * - KV bytes = 2 L d_h n_kv * bytes * rho (K and V of the kept part of the cache).
 * - method overhead: Quest reads its page summaries, 2 d_h n_kv L / P elements (per-channel min and
 *   max of each page), i.e. 2 d_h n_kv (L / P) * bytes bytes, with L / P not rounded (as stated).
 *   Methods without per-step overhead (dense, SnapKV, Ada-SnapKV) add 0.
 */

/** The model shape the cost model needs. */
export interface ModelShape {
  layers: number;
  /** Query heads h. */
  heads: number;
  /** KV heads n_kv (GQA: heads is a multiple of kvHeads). */
  kvHeads: number;
  /** Head dim d_h. */
  headDim: number;
  /** Model width d (hidden size). */
  width: number;
}

/** 'square': the paper's full L x L count. 'causal': only the causal triangle (half). */
export type AttentionRegion = 'square' | 'causal';

export interface Total {
  perLayer: number;
  total: number;
}

function checkShape(shape: ModelShape): void {
  for (const k of ['layers', 'heads', 'kvHeads', 'headDim', 'width'] as const) {
    const v = shape[k];
    if (!Number.isInteger(v) || v <= 0) throw new Error(`costModel: ${k} must be > 0, got ${v}`);
  }
}

function checkLength(L: number): void {
  if (!Number.isFinite(L) || L < 0) throw new Error(`costModel: length must be >= 0, got ${L}`);
}

/** rho = 1 - sparsity, with sparsity in [0, 1]. */
export function density(sparsity: number): number {
  if (!(sparsity >= 0 && sparsity <= 1)) {
    throw new Error(`costModel: sparsity must be in [0, 1], got ${sparsity}`);
  }
  return 1 - sparsity;
}

function totalOf(shape: ModelShape, perLayer: number): Total {
  return { perLayer, total: perLayer * shape.layers };
}

/** Prefill attention FLOPs: rho * (4 h L^2 d_h + 3 h L^2) per layer, halved for 'causal'. */
export function prefillAttentionFlops(
  shape: ModelShape,
  L: number,
  sparsity: number,
  region: AttentionRegion = 'square',
): Total & { region: AttentionRegion } {
  checkShape(shape);
  checkLength(L);
  const { heads: h, headDim: dh } = shape;
  const square = density(sparsity) * (4 * h * L * L * dh + 3 * h * L * L);
  return { ...totalOf(shape, region === 'causal' ? square / 2 : square), region };
}

/** Projection FLOPs 2 L d (2d + 2 d_h n_kv) per layer; independent of sparsity. */
export function projectionFlops(shape: ModelShape, L: number): Total {
  checkShape(shape);
  checkLength(L);
  const { width: d, headDim: dh, kvHeads } = shape;
  return totalOf(shape, 2 * L * d * (2 * d + 2 * dh * kvHeads));
}

/** Vertical-Slash / FlexPrefill estimation pass: h q L (2 d_h + 5) per layer, q = min(lastQ, L). */
export function verticalSlashEstimationFlops(shape: ModelShape, L: number, lastQ: number): Total {
  checkShape(shape);
  checkLength(L);
  if (!Number.isInteger(lastQ) || lastQ < 0) {
    throw new Error(`costModel: lastQ must be an integer >= 0, got ${lastQ}`);
  }
  const q = Math.min(lastQ, L);
  return totalOf(shape, shape.heads * q * L * (2 * shape.headDim + 5));
}

/** Prefill method overhead. */
export type PrefillOverhead = { kind: 'none' } | { kind: 'estimation'; lastQ: number };

export interface PrefillCost {
  region: AttentionRegion;
  attention: Total;
  projections: Total;
  overhead: Total;
  /** attention + projections + overhead, over all layers. */
  total: number;
}

/** Total prefill FLOPs of one forward pass over L prompt tokens (attention + projections). */
export function prefillCost(
  shape: ModelShape,
  L: number,
  sparsity: number,
  options: { region?: AttentionRegion; overhead?: PrefillOverhead } = {},
): PrefillCost {
  const { region: r, ...attention } = prefillAttentionFlops(
    shape,
    L,
    sparsity,
    options.region ?? 'square',
  );
  const projections = projectionFlops(shape, L);
  const o = options.overhead ?? { kind: 'none' };
  const overhead =
    o.kind === 'estimation' ? verticalSlashEstimationFlops(shape, L, o.lastQ) : totalOf(shape, 0);
  return {
    region: r,
    attention,
    projections,
    overhead,
    total: attention.total + projections.total + overhead.total,
  };
}

/** Decode KV bytes read per step: 2 L d_h n_kv * bytes * rho per layer. */
export function decodeKvBytes(
  shape: ModelShape,
  L: number,
  sparsity: number,
  bytesPerElement: number,
): Total {
  checkShape(shape);
  checkLength(L);
  if (!(bytesPerElement > 0))
    throw new Error(`costModel: bytes must be > 0, got ${bytesPerElement}`);
  return totalOf(
    shape,
    2 * L * shape.headDim * shape.kvHeads * bytesPerElement * density(sparsity),
  );
}

/** Quest summaries read per step: 2 d_h n_kv L / P elements per layer, times bytes. */
export function questSummaryBytes(
  shape: ModelShape,
  L: number,
  pageSize: number,
  bytesPerElement: number,
): Total {
  checkShape(shape);
  checkLength(L);
  if (!(pageSize > 0)) throw new Error(`costModel: page size must be > 0, got ${pageSize}`);
  if (!(bytesPerElement > 0))
    throw new Error(`costModel: bytes must be > 0, got ${bytesPerElement}`);
  return totalOf(shape, ((2 * shape.headDim * shape.kvHeads * L) / pageSize) * bytesPerElement);
}

/** Decode method overhead per step. */
export type DecodeOverhead = { kind: 'none' } | { kind: 'quest'; pageSize: number };

export interface DecodeCost {
  kv: Total;
  overhead: Total;
  /** kv + overhead bytes per generated token, over all layers. */
  total: number;
}

/** Bytes read per decode step with a KV cache of L tokens. */
export function decodeCost(
  shape: ModelShape,
  L: number,
  sparsity: number,
  bytesPerElement: number,
  overhead: DecodeOverhead = { kind: 'none' },
): DecodeCost {
  const kv = decodeKvBytes(shape, L, sparsity, bytesPerElement);
  const o =
    overhead.kind === 'quest'
      ? questSummaryBytes(shape, L, overhead.pageSize, bytesPerElement)
      : totalOf(shape, 0);
  return { kv, overhead: o, total: kv.total + o.total };
}
