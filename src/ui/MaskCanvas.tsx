import { useEffect, useRef } from 'react';
import {
  CELL_FULL,
  CELL_NON_CAUSAL,
  CELL_PARTIAL,
  CELL_SKIPPED,
  type MaskPreview,
} from '../engine/maskPreview';
import { useAppStore } from './store';

/** Legend entries; each swatch's CSS colour (theme-aware) is also what the canvas paints. */
export const CELL_LEGEND = [
  { cell: CELL_FULL, className: 'cell-full', label: 'kept, full block' },
  { cell: CELL_PARTIAL, className: 'cell-partial', label: 'kept, partial block' },
  { cell: CELL_SKIPPED, className: 'cell-skipped', label: 'skipped (causal)' },
  { cell: CELL_NON_CAUSAL, className: 'cell-noncausal', label: 'non-causal' },
] as const;

const SIZE = 440;

/** Reads the legend swatches' resolved colours (light-dark() resolves there, not in var()). */
function cellColours(host: HTMLElement): string[] {
  const colours = ['#888', '#888', '#888', '#888'];
  for (const entry of CELL_LEGEND) {
    const swatch = host.querySelector(`.swatch.${entry.className}`);
    if (swatch) colours[entry.cell] = getComputedStyle(swatch).backgroundColor;
  }
  return colours;
}

function draw(canvas: HTMLCanvasElement, preview: MaskPreview, head: number, colours: string[]) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(SIZE * ratio);
  canvas.height = Math.round(SIZE * ratio);
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const { numQueryBlocks: rows, numKeyBlocks: cols, cells } = preview;
  const cell = SIZE / Math.max(rows, cols);
  // Grid lines only where cells are big enough to show them.
  const gap = cell >= 6 ? 1 : 0;
  ctx.fillStyle = colours[CELL_NON_CAUSAL];
  ctx.fillRect(0, 0, SIZE, SIZE);
  for (let qb = 0; qb < rows; qb++) {
    const base = (head * rows + qb) * cols;
    for (let kb = 0; kb < cols; kb++) {
      const code = cells[base + kb];
      if (code === CELL_NON_CAUSAL) continue;
      ctx.fillStyle = colours[code];
      const x = Math.floor(kb * cell);
      const y = Math.floor(qb * cell);
      ctx.fillRect(
        x,
        y,
        Math.floor((kb + 1) * cell) - x - gap,
        Math.floor((qb + 1) * cell) - y - gap,
      );
    }
  }
}

export function MaskCanvas({ preview, head }: { preview: MaskPreview; head: number }) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const theme = useAppStore((s) => s.theme);
  useEffect(() => {
    const canvas = canvasRef.current;
    const host = canvas?.closest('.mask-view');
    if (!canvas || !(host instanceof HTMLElement)) return;
    const repaint = () => draw(canvas, preview, head, cellColours(host));
    repaint();
    // The system theme can change under an "Auto" preference.
    const media = window.matchMedia('(prefers-color-scheme: dark)');
    media.addEventListener('change', repaint);
    return () => media.removeEventListener('change', repaint);
  }, [preview, head, theme]);

  return (
    <canvas
      ref={canvasRef}
      className="mask-canvas"
      data-testid="mask-canvas"
      style={{ width: SIZE, height: SIZE }}
      role="img"
      aria-label={`Block mask of head ${head}: ${preview.numQueryBlocks} query blocks by ${preview.numKeyBlocks} key blocks`}
    />
  );
}
