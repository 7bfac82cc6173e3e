/**
 * Pure helpers of the attention-map view: the data it shows, cell colours (log scale of mass, and
 * kept / dropped / mass lost against a method's mask), the zoom-and-pan viewport, and the text of a
 * cell's tooltip. No React, no DOM beyond the ImageData buffer the caller hands in.
 */
import type { AttentionMapGrid } from '../kernels/attentionMap';
import type { PromptAttentionMap } from '../model/runtime/attentionMap';
import type { AttentionStats } from '../model/runtime/model';

/** One measured layer, for the per-layer bars. */
export interface LayerMeasurement {
  layer: number;
  /** 1 - computed / causal elements, as the method's kernels counted them. */
  sparsity: number;
  /** Dense attention mass on the kept elements, averaged over queries and heads; null if unknown. */
  recall: number | null;
}

/** What the view shows: one layer's map from a real run, plus what is known of the others. */
export interface AttentionMapViewData {
  /** Model and prompt, as the run describes itself. */
  title: string;
  layer: number;
  grid: AttentionMapGrid;
  /** Token text by absolute position, 0 .. qStart + numQueries - 1. */
  tokens: readonly string[];
  /** The method whose mask `grid.kept` follows; null for a dense-only map. */
  method: string | null;
  /** Per head, the share of causal elements the method kept (keptSharePerHead); null if none. */
  headBudgets: ArrayLike<number> | null;
  layers: readonly LayerMeasurement[];
}

/**
 * The view of a run's map (promptAttentionMap in the engine): per-layer sparsity as the prefill
 * kernels counted it, recall where it was measured (the mapped layer).
 */
export function viewDataFromRun(run: {
  title: string;
  layer: number;
  map: PromptAttentionMap;
  tokens: readonly string[];
  stats: AttentionStats;
}): AttentionMapViewData {
  const { map, layer } = run;
  return {
    title: run.title,
    layer,
    grid: map.grid,
    tokens: run.tokens,
    method: map.method,
    headBudgets: map.headBudgets,
    layers: run.stats.prefill.map((entry, i) => ({
      layer: i,
      sparsity: entry.sparsity,
      recall: i === layer ? map.recall : null,
    })),
  };
}

export type CellKind = 'kept' | 'partial' | 'dropped' | 'empty';

/** Kept mass at or above this share of the cell's mass counts as all kept (f32 sums). */
const KEPT_ALL = 1 - 1e-5;

export function cellKind(mass: number, kept: number | null): CellKind {
  if (!(mass > 0)) return 'empty';
  if (kept === null || kept >= mass * KEPT_ALL) return 'kept';
  return kept > 0 ? 'partial' : 'dropped';
}

/** The log colour scale of a head: decades below its largest cell that still get a colour. */
export const LOG_DECADES = 5;

export function headMax(grid: AttentionMapGrid, head: number): number {
  const size = grid.numQueryBlocks * grid.numKeyBlocks;
  let max = 0;
  for (let i = head * size; i < (head + 1) * size; i++) max = Math.max(max, grid.mass[i]);
  return max;
}

/** Position of `value` on the head's log scale: 0 at max / 10^LOG_DECADES (and below), 1 at max. */
export function logLevel(value: number, max: number): number {
  if (!(value > 0) || !(max > 0)) return 0;
  return Math.min(1, Math.max(0, 1 + Math.log10(value / max) / LOG_DECADES));
}

type Rgb = [number, number, number];

/** Dark blue through teal to yellow (viridis-like): mass that the method kept, or dense mass. */
const KEPT_RAMP: Rgb[] = [
  [30, 22, 70],
  [49, 84, 142],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];
/** Dark grey to bright red: mass the method dropped. */
const LOST_RAMP: Rgb[] = [
  [60, 52, 56],
  [140, 40, 40],
  [230, 40, 30],
  [255, 120, 90],
];

function ramp(stops: Rgb[], t: number): Rgb {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((c) => stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f) as Rgb;
}

export const KEPT_SWATCH = 'rgb(94, 201, 98)';
export const LOST_SWATCH = 'rgb(230, 40, 30)';

/**
 * RGBA of one cell: dense or kept mass on the kept ramp, dropped mass on the lost ramp, a partly
 * kept cell mixed in proportion; cells with no mass (non-causal) are transparent.
 */
export function cellColour(mass: number, kept: number | null, max: number): Rgb | null {
  const kind = cellKind(mass, kept);
  if (kind === 'empty') return null;
  const level = logLevel(mass, max);
  if (kind === 'kept') return ramp(KEPT_RAMP, level);
  if (kind === 'dropped') return ramp(LOST_RAMP, level);
  const share = (kept as number) / mass;
  const a = ramp(KEPT_RAMP, level);
  const b = ramp(LOST_RAMP, level);
  return [0, 1, 2].map((c) => a[c] * share + b[c] * (1 - share)) as Rgb;
}

/**
 * Paints one head into `pixels` (numKeyBlocks x numQueryBlocks RGBA: x = key block, y = query
 * block). With showKept false, or no kept grid, every cell is coloured by its dense mass.
 */
export function paintHead(
  grid: AttentionMapGrid,
  head: number,
  showKept: boolean,
  pixels: Uint8ClampedArray,
): void {
  const { numQueryBlocks: rows, numKeyBlocks: cols, mass } = grid;
  const kept = showKept ? grid.kept : null;
  if (pixels.length !== rows * cols * 4) {
    throw new Error(`paintHead: ${pixels.length / 4} pixels for a ${rows} x ${cols} grid`);
  }
  const max = headMax(grid, head);
  const base = head * rows * cols;
  for (let i = 0; i < rows * cols; i++) {
    const colour = cellColour(mass[base + i], kept ? kept[base + i] : null, max);
    const p = i * 4;
    if (!colour) {
      pixels[p + 3] = 0;
      continue;
    }
    pixels[p] = colour[0];
    pixels[p + 1] = colour[1];
    pixels[p + 2] = colour[2];
    pixels[p + 3] = 255;
  }
}

/** Screen pixels per grid cell and the screen position of the grid's origin. */
export interface Viewport {
  scale: number;
  x: number;
  y: number;
}

export const MAX_CELL_PIXELS = 64;

/** The whole grid centred in a width x height canvas. */
export function fitViewport(cols: number, rows: number, width: number, height: number): Viewport {
  const scale = Math.min(width / cols, height / rows);
  return { scale, x: (width - cols * scale) / 2, y: (height - rows * scale) / 2 };
}

/** Zooms by `factor` keeping screen point (px, py) over the same grid point. */
export function zoomAt(
  view: Viewport,
  factor: number,
  px: number,
  py: number,
  minScale: number,
): Viewport {
  const scale = Math.min(MAX_CELL_PIXELS, Math.max(minScale, view.scale * factor));
  const applied = scale / view.scale;
  return { scale, x: px - (px - view.x) * applied, y: py - (py - view.y) * applied };
}

/** Keeps at least a quarter of the canvas covered by the grid, so it cannot be lost off-screen. */
export function clampViewport(
  view: Viewport,
  cols: number,
  rows: number,
  width: number,
  height: number,
): Viewport {
  const w = cols * view.scale;
  const h = rows * view.scale;
  const x = Math.min(width * 0.75, Math.max(width * 0.25 - w, view.x));
  const y = Math.min(height * 0.75, Math.max(height * 0.25 - h, view.y));
  return { ...view, x, y };
}

/** The grid cell under screen point (px, py), or null outside the grid. */
export function cellAtPoint(
  view: Viewport,
  px: number,
  py: number,
  cols: number,
  rows: number,
): { queryBlock: number; keyBlock: number } | null {
  const keyBlock = Math.floor((px - view.x) / view.scale);
  const queryBlock = Math.floor((py - view.y) / view.scale);
  if (keyBlock < 0 || queryBlock < 0 || keyBlock >= cols || queryBlock >= rows) return null;
  return { queryBlock, keyBlock };
}

/** A token's text for display: whitespace made visible, long tokens cut. */
export function showToken(text: string | undefined): string {
  if (text === undefined) return '?';
  const visible = text.replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5');
  return visible.length > 24 ? `${visible.slice(0, 23)}\u2026` : visible;
}

function tokenSpan(tokens: readonly string[], first: number, end: number): string {
  if (end - first === 1) return `${first} \u201c${showToken(tokens[first])}\u201d`;
  const text = tokens.slice(first, Math.min(end, first + 6)).join('');
  const cut = end - first > 6 ? '\u2026' : '';
  return `${first}\u2013${end - 1} \u201c${showToken(text)}${cut}\u201d`;
}

export interface CellDetails {
  query: string;
  key: string;
  /** Mean attention weight per query of the cell (its probability mass / rows). */
  weight: number;
  kept: number | null;
  causal: boolean;
}

/** What the tooltip says about cell (queryBlock, keyBlock) of `head`. */
export function cellDetails(
  grid: AttentionMapGrid,
  tokens: readonly string[],
  head: number,
  queryBlock: number,
  keyBlock: number,
): CellDetails {
  const { blockSize, qStart, numQueries, numQueryBlocks, numKeyBlocks } = grid;
  const firstQuery = qStart + queryBlock * blockSize;
  const endQuery = Math.min(qStart + numQueries, firstQuery + blockSize);
  const firstKey = keyBlock * blockSize;
  const endKey = Math.min(qStart + numQueries, firstKey + blockSize);
  const cell = (head * numQueryBlocks + queryBlock) * numKeyBlocks + keyBlock;
  return {
    query: tokenSpan(tokens, firstQuery, endQuery),
    key: tokenSpan(tokens, firstKey, endKey),
    weight: grid.mass[cell],
    kept: grid.kept ? grid.kept[cell] : null,
    causal: firstKey <= endQuery - 1,
  };
}
