import { useEffect, useRef } from 'react';
import { useAppStore } from './store';
import { KEPT_SCALE, NON_CAUSAL, type TokenPicture } from './tokenMask';

const SIZE = 440;

type Rgb = [number, number, number];

/** "rgb(1, 2, 3)" / "rgba(1, 2, 3, 0.5)" as numbers; grey when the browser says something else. */
function parseRgb(colour: string): Rgb {
  const match = /rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/.exec(colour);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : [136, 136, 136];
}

/** The legend swatches' resolved colours (the theme's), as the block picture uses them. */
function swatch(host: HTMLElement, className: string): Rgb {
  const element = host.querySelector(`.swatch.${className}`);
  return parseRgb(element ? getComputedStyle(element).backgroundColor : '');
}

function draw(canvas: HTMLCanvasElement, picture: TokenPicture, head: number, host: HTMLElement) {
  const { size, cells } = picture;
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const kept = swatch(host, 'cell-full');
  const skipped = swatch(host, 'cell-skipped');
  const outside = swatch(host, 'cell-noncausal');
  const image = ctx.createImageData(size, size);
  const base = head * size * size;
  for (let c = 0; c < size * size; c++) {
    const value = cells[base + c];
    const t = value === NON_CAUSAL ? 0 : value / KEPT_SCALE;
    const from = value === NON_CAUSAL ? outside : skipped;
    for (let k = 0; k < 3; k++) image.data[c * 4 + k] = from[k] + (kept[k] - from[k]) * t;
    image.data[c * 4 + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

/** The token-level mask, one pixel per cell, scaled up without smoothing. */
export function TokenMaskCanvas({ picture, head }: { picture: TokenPicture; head: number }) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const theme = useAppStore((s) => s.theme);
  useEffect(() => {
    const canvas = canvasRef.current;
    const host = canvas?.closest('.mask-view');
    if (!canvas || !(host instanceof HTMLElement)) return;
    const repaint = () => draw(canvas, picture, head, host);
    repaint();
    const media = window.matchMedia('(prefers-color-scheme: dark)');
    media.addEventListener('change', repaint);
    return () => media.removeEventListener('change', repaint);
  }, [picture, head, theme]);
  const perCell = picture.seqLen / picture.size;
  return (
    <canvas
      ref={canvasRef}
      className="mask-canvas token-canvas"
      data-testid="token-canvas"
      style={{ width: SIZE, height: SIZE }}
      role="img"
      aria-label={`Token-level mask of head ${head}: ${picture.size} by ${picture.size} cells of ${perCell} token${perCell === 1 ? '' : 's'}`}
    />
  );
}
