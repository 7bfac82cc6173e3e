import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import type { AttentionMapGrid } from '../kernels/attentionMap';
import { downloadUrl } from './exportResults';
import {
  cellAtPoint,
  cellDetails,
  clampViewport,
  fitViewport,
  paintHead,
  zoomAt,
  type CellDetails,
  type Viewport,
} from './attentionMapRender';

const SIZE = 520;
const KEY_PAN = 40;
const KEY_ZOOM = 1.25;

/** The grid of one head as an image of one pixel per cell, drawn scaled (smoothing off). */
function gridImage(grid: AttentionMapGrid, head: number, showKept: boolean): HTMLCanvasElement {
  const image = document.createElement('canvas');
  image.width = grid.numKeyBlocks;
  image.height = grid.numQueryBlocks;
  const context = image.getContext('2d');
  if (!context) throw new Error('no 2D canvas context for the attention map image');
  const pixels = context.createImageData(grid.numKeyBlocks, grid.numQueryBlocks);
  paintHead(grid, head, showKept, pixels.data);
  context.putImageData(pixels, 0, 0);
  return image;
}

interface Hover {
  x: number;
  y: number;
  queryBlock: number;
  keyBlock: number;
  details: CellDetails;
}

function formatWeight(value: number): string {
  if (value === 0) return '0';
  return value >= 1e-3 ? value.toFixed(4) : value.toExponential(2);
}

/**
 * The zoomable heatmap of one head: wheel zooms at the cursor, drag pans, +/- and the arrow keys do
 * the same from the keyboard (0 fits the grid again); hovering a cell shows its tokens and weight.
 */
export function AttentionMapCanvas({
  grid,
  head,
  showKept,
  tokens,
}: {
  grid: AttentionMapGrid;
  head: number;
  showKept: boolean;
  tokens: readonly string[];
}) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const imageRef = useRef<HTMLCanvasElement | null>(null);
  const { numKeyBlocks: cols, numQueryBlocks: rows } = grid;
  const fit = useCallback(() => fitViewport(cols, rows, SIZE, SIZE), [cols, rows]);
  const [view, setView] = useState<Viewport>(fit);
  const viewRef = useRef(view);
  const [hover, setHover] = useState<Hover | null>(null);
  const drag = useRef<{ x: number; y: number } | null>(null);
  const [dragging, setDragging] = useState(false);

  const draw = useCallback(() => {
    const canvas = canvasRef.current;
    const image = imageRef.current;
    const context = canvas?.getContext('2d');
    if (!canvas || !image || !context) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(SIZE * ratio)) {
      canvas.width = Math.round(SIZE * ratio);
      canvas.height = Math.round(SIZE * ratio);
    }
    const { scale, x, y } = viewRef.current;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, SIZE, SIZE);
    context.imageSmoothingEnabled = false;
    context.drawImage(image, x, y, cols * scale, rows * scale);
  }, [cols, rows]);

  // Event handlers read and move the viewport through the ref (several wheel events may arrive
  // before React renders); the state re-renders the zoom readout and triggers the redraw.
  const applyView = useCallback(
    (next: Viewport) => {
      const clamped = clampViewport(next, cols, rows, SIZE, SIZE);
      viewRef.current = clamped;
      setView(clamped);
    },
    [cols, rows],
  );

  // A new grid starts fitted; a new head or overlay keeps the zoom.
  const [shownGrid, setShownGrid] = useState(grid);
  if (shownGrid !== grid) {
    setShownGrid(grid);
    setView(fit());
    setHover(null);
  }

  useEffect(() => {
    viewRef.current = view;
    draw();
  }, [view, draw]);

  useEffect(() => {
    imageRef.current = gridImage(grid, head, showKept);
    draw();
  }, [grid, head, showKept, draw]);

  // Native listener: React's wheel listener is passive and cannot stop the page from scrolling.
  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const onWheel = (event: WheelEvent) => {
      event.preventDefault();
      const box = canvas.getBoundingClientRect();
      const factor = Math.exp(-event.deltaY * 0.0015);
      const minScale = fit().scale / 2;
      applyView(
        zoomAt(
          viewRef.current,
          factor,
          event.clientX - box.left,
          event.clientY - box.top,
          minScale,
        ),
      );
    };
    canvas.addEventListener('wheel', onWheel, { passive: false });
    return () => canvas.removeEventListener('wheel', onWheel);
  }, [applyView, fit]);

  const pointAt = (clientX: number, clientY: number) => {
    const box = canvasRef.current!.getBoundingClientRect();
    return { x: clientX - box.left, y: clientY - box.top };
  };

  const onPointerMove = (event: React.PointerEvent<HTMLCanvasElement>) => {
    const point = pointAt(event.clientX, event.clientY);
    if (drag.current) {
      const current = viewRef.current;
      applyView({
        ...current,
        x: current.x + point.x - drag.current.x,
        y: current.y + point.y - drag.current.y,
      });
      drag.current = point;
      setHover(null);
      return;
    }
    const cell = cellAtPoint(viewRef.current, point.x, point.y, cols, rows);
    if (!cell) {
      setHover(null);
      return;
    }
    const details = cellDetails(grid, tokens, head, cell.queryBlock, cell.keyBlock);
    setHover({ ...point, ...cell, details });
  };

  const onKeyDown = (event: KeyboardEvent<HTMLCanvasElement>) => {
    const current = viewRef.current;
    const centre = SIZE / 2;
    const minScale = fit().scale / 2;
    const moves: Record<string, () => Viewport> = {
      '+': () => zoomAt(current, KEY_ZOOM, centre, centre, minScale),
      '=': () => zoomAt(current, KEY_ZOOM, centre, centre, minScale),
      '-': () => zoomAt(current, 1 / KEY_ZOOM, centre, centre, minScale),
      '0': fit,
      ArrowLeft: () => ({ ...current, x: current.x + KEY_PAN }),
      ArrowRight: () => ({ ...current, x: current.x - KEY_PAN }),
      ArrowUp: () => ({ ...current, y: current.y + KEY_PAN }),
      ArrowDown: () => ({ ...current, y: current.y - KEY_PAN }),
    };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    applyView(move());
  };

  const zoom = view.scale / fit().scale;
  const unit = grid.blockSize === 1 ? 'token' : `${grid.blockSize}-token block`;
  return (
    <div className="attention-map-canvas-wrap" style={{ position: 'relative', width: SIZE }}>
      <canvas
        ref={canvasRef}
        className="attention-map-canvas"
        data-zoom={zoom.toFixed(3)}
        tabIndex={0}
        role="img"
        aria-label={`Attention map of head ${head}: ${rows} query x ${cols} key cells, one per ${unit}; wheel or +/- to zoom, drag or arrows to pan, 0 to fit`}
        style={{
          width: SIZE,
          height: SIZE,
          cursor: dragging ? 'grabbing' : 'crosshair',
          touchAction: 'none',
          background: 'var(--surface-2)',
          borderRadius: 4,
          display: 'block',
        }}
        onPointerDown={(event) => {
          event.currentTarget.setPointerCapture(event.pointerId);
          drag.current = pointAt(event.clientX, event.clientY);
          setDragging(true);
        }}
        onPointerUp={() => {
          drag.current = null;
          setDragging(false);
        }}
        onPointerCancel={() => {
          drag.current = null;
          setDragging(false);
        }}
        onPointerMove={onPointerMove}
        onPointerLeave={() => setHover(null)}
        onKeyDown={onKeyDown}
      />
      <div
        className="muted attention-map-zoom"
        style={{
          display: 'flex',
          gap: 8,
          alignItems: 'baseline',
          marginTop: 4,
          fontSize: '0.85em',
        }}
      >
        <span style={{ flex: 1 }}>
          Zoom ×{zoom.toFixed(1)} · rows: queries, columns: keys, one cell per {unit}
        </span>
        <button
          type="button"
          className="small"
          data-testid="attention-map-png"
          onClick={() =>
            downloadUrl(`attention-map-head${head}.png`, canvasRef.current!.toDataURL('image/png'))
          }
        >
          Save as PNG
        </button>
      </div>
      {hover && hover.details.causal && (
        <div
          role="tooltip"
          className="attention-map-tooltip"
          style={{
            position: 'absolute',
            left: Math.min(hover.x + 14, SIZE - 220),
            top: hover.y + 14,
            width: 220,
            pointerEvents: 'none',
            background: 'var(--surface)',
            border: '1px solid var(--border)',
            borderRadius: 4,
            padding: '6px 8px',
            fontSize: '0.85em',
            boxShadow: '0 2px 8px rgb(0 0 0 / 0.25)',
          }}
        >
          <div>
            <strong>Query</strong> {hover.details.query}
          </div>
          <div>
            <strong>Key</strong> {hover.details.key}
          </div>
          <div>
            <strong>Weight</strong> {formatWeight(hover.details.weight)}
            {grid.blockSize > 1 ? ' (mean per query)' : ''}
          </div>
          {hover.details.kept !== null && (
            <div>
              <strong>Kept</strong> {formatWeight(hover.details.kept)} · <strong>lost</strong>{' '}
              {formatWeight(Math.max(0, hover.details.weight - hover.details.kept))}
            </div>
          )}
        </div>
      )}
    </div>
  );
}
