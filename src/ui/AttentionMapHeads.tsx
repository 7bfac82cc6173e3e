import { useEffect, useRef } from 'react';
import type { AttentionMapGrid } from '../kernels/attentionMap';
import { paintHead } from './attentionMapRender';
import { formatPercent } from './format';

const THUMB = 72;

function HeadThumb({
  grid,
  head,
  showKept,
  selected,
  label,
  onSelect,
}: {
  grid: AttentionMapGrid;
  head: number;
  showKept: boolean;
  selected: boolean;
  label: string;
  onSelect: () => void;
}) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = canvasRef.current;
    const context = canvas?.getContext('2d');
    if (!canvas || !context) return;
    canvas.width = grid.numKeyBlocks;
    canvas.height = grid.numQueryBlocks;
    const pixels = context.createImageData(grid.numKeyBlocks, grid.numQueryBlocks);
    paintHead(grid, head, showKept, pixels.data);
    context.putImageData(pixels, 0, 0);
  }, [grid, head, showKept]);
  return (
    <button
      type="button"
      className="attention-map-head"
      aria-pressed={selected}
      aria-label={label}
      title={label}
      onClick={onSelect}
      style={{
        padding: 3,
        display: 'flex',
        flexDirection: 'column',
        alignItems: 'center',
        gap: 2,
        borderColor: selected ? 'var(--accent)' : undefined,
        borderWidth: selected ? 2 : undefined,
      }}
    >
      <canvas
        ref={canvasRef}
        style={{
          width: THUMB,
          height: THUMB,
          imageRendering: 'pixelated',
          background: 'var(--surface-2)',
        }}
      />
      <span style={{ fontSize: '0.75em' }}>h{head}</span>
    </button>
  );
}

/** Every head of the layer as a small map; clicking one selects it for the large view. */
export function AttentionMapHeads({
  grid,
  head,
  showKept,
  recall,
  onSelect,
}: {
  grid: AttentionMapGrid;
  head: number;
  showKept: boolean;
  recall: ArrayLike<number> | null;
  onSelect: (head: number) => void;
}) {
  return (
    <div
      className="attention-map-heads"
      role="group"
      aria-label="Heads of the layer"
      style={{ display: 'flex', flexWrap: 'wrap', gap: 6 }}
    >
      {Array.from({ length: grid.numHeads }, (_, h) => (
        <HeadThumb
          key={h}
          grid={grid}
          head={h}
          showKept={showKept}
          selected={h === head}
          label={recall ? `Head ${h}: recall ${formatPercent(recall[h])}` : `Head ${h}`}
          onSelect={() => onSelect(h)}
        />
      ))}
    </div>
  );
}
