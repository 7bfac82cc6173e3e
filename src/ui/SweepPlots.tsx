/**
 * The sweep's three plots (plotly, loaded on first use so the first paint stays light): score
 * against sparsity with SE error bars and the dense reference, score against cost relative to
 * dense (isoCost), and the measured speed-up against dense. Sparsity is the kernels' count by
 * default, the target on request. They redraw as results stream in.
 */
import { useEffect, useId, useMemo, useRef, useState } from 'react';
import type { PlotlyApi } from 'plotly.js-dist-min';
import type { SampleResult } from '../engine/sweepTypes';
import { getMethod } from '../methods/registry';
import { getTask } from '../tasks/registry';
import { SweepLengths } from './SweepLengths';
import { SweepTable } from './SweepTable';
import {
  accuracyVsCost,
  accuracyVsSparsity,
  resultAxes,
  speedupVsSparsity,
  type PlotData,
  type PlotFilter,
  type SparsityAxis,
} from './sweepPlotData';

let plotlyModule: Promise<PlotlyApi> | null = null;

/** plotly, imported on first use (its own chunk). */
export function loadPlotly(): Promise<PlotlyApi> {
  plotlyModule ??= import('plotly.js-dist-min').then((m) => m.default);
  return plotlyModule;
}

/** One colour per method, fixed so a method keeps its colour across plots and runs. */
const PALETTE: Record<string, string> = {
  vertical_slash: '#1f77b4',
  flexprefill: '#ff7f0e',
  block_sparse: '#2ca02c',
  blasst: '#d62728',
  sliding_window: '#9467bd',
  quest: '#8c564b',
  snapkv: '#e377c2',
  ada_snapkv: '#17becf',
  user_pattern: '#bcbd22',
};

interface PlotSpec {
  id: 'accuracy' | 'cost' | 'speedup';
  title: string;
  xTitle: string;
  yTitle: string;
  data: PlotData;
  /** Where the dense reference sits on x (a line across for the others). */
  denseX: 'across' | number;
}

function fmt(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

function traces(spec: PlotSpec, xRange: [number, number]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const { dense } = spec.data;
  if (dense) {
    const se = Number.isFinite(dense.se) ? dense.se : 0;
    if (spec.denseX === 'across') {
      if (se > 0) {
        out.push({
          x: [xRange[0], xRange[1], xRange[1], xRange[0]],
          y: [dense.mean + se, dense.mean + se, dense.mean - se, dense.mean - se],
          fill: 'toself',
          fillcolor: 'rgba(128,128,128,0.18)',
          line: { width: 0 },
          hoverinfo: 'skip',
          showlegend: false,
          type: 'scatter',
          mode: 'lines',
        });
      }
      out.push({
        x: xRange,
        y: [dense.mean, dense.mean],
        name: spec.id === 'speedup' ? 'dense (1×)' : `dense (n=${dense.n})`,
        type: 'scatter',
        mode: 'lines',
        line: { color: '#7f7f7f', dash: 'dot', width: 2 },
        hovertemplate:
          spec.id === 'speedup'
            ? 'dense<extra></extra>'
            : `dense: ${fmt(dense.mean)} ± ${fmt(dense.se)} (n=${dense.n})<extra></extra>`,
      });
    } else {
      out.push({
        x: [spec.denseX],
        y: [dense.mean],
        error_y: { type: 'data', array: [se], visible: se > 0 },
        name: `dense (n=${dense.n})`,
        type: 'scatter',
        mode: 'markers',
        marker: { color: '#7f7f7f', size: 12, symbol: 'diamond' },
      });
    }
  }
  for (const series of spec.data.series) {
    const label = `${getMethod(series.method).label} (${series.phase})`;
    out.push({
      x: series.points.map((p) => p.x),
      y: series.points.map((p) => p.y.mean),
      error_y: {
        type: 'data',
        array: series.points.map((p) => (Number.isFinite(p.y.se) ? p.y.se : 0)),
        visible: true,
      },
      customdata: series.points.map((p) => [
        p.targetSparsity,
        p.measuredSparsity,
        p.y.n,
        fmt(p.y.se),
      ]),
      hovertemplate:
        `${label}<br>target sparsity %{customdata[0]}<br>measured %{customdata[1]:.3f}` +
        '<br>%{y:.3f} ± %{customdata[3]} (n=%{customdata[2]})<extra></extra>',
      name: label,
      type: 'scatter',
      mode: 'lines+markers',
      line: {
        color: PALETTE[series.method] ?? '#444',
        dash: series.phase === 'decode' ? 'dash' : 'solid',
        width: 3,
      },
      marker: { size: 9 },
    });
  }
  return out;
}

/** Text and grid colours from the page's theme (resolved through the element's own style). */
function themeColours(element: HTMLElement): { text: string; grid: string; bg: string } {
  const style = getComputedStyle(element);
  return { text: style.color, grid: style.borderTopColor, bg: style.backgroundColor };
}

function Plot({
  spec,
  onReady,
}: {
  spec: PlotSpec;
  onReady: (id: PlotSpec['id'], element: HTMLDivElement) => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const element = host.current;
    if (!element) return;
    let live = true;
    loadPlotly().then(
      (Plotly) => {
        if (!live) return;
        const colours = themeColours(element);
        const xs = spec.data.series.flatMap((s) => s.points.map((p) => p.x));
        const xRange: [number, number] =
          spec.id === 'cost' ? [0, 1.05] : [0, Math.max(0.95, ...xs)];
        void Plotly.react(
          element,
          traces(spec, xRange),
          {
            title: { text: spec.title, font: { size: 20 } },
            paper_bgcolor: colours.bg,
            plot_bgcolor: colours.bg,
            font: { color: colours.text, size: 15 },
            xaxis: {
              title: { text: spec.xTitle },
              gridcolor: colours.grid,
              zeroline: false,
              range: spec.id === 'cost' ? [0, 1.05] : [-0.02, xRange[1] + 0.02],
            },
            yaxis: {
              title: { text: spec.yTitle },
              gridcolor: colours.grid,
              zeroline: false,
              ...(spec.id === 'speedup' ? {} : { range: [-0.02, 1.05] }),
            },
            legend: { orientation: 'h', y: -0.22 },
            margin: { t: 50, r: 20, b: 90, l: 70 },
            height: 420,
          },
          { responsive: true, displaylogo: false },
        ).then(() => live && onReady(spec.id, element));
      },
      (e: unknown) => setError(`The plotting library did not load: ${String(e)}`),
    );
    return () => {
      live = false;
    };
  }, [spec, onReady]);
  useEffect(() => {
    const element = host.current;
    return () => {
      if (element && plotlyModule) void plotlyModule.then((Plotly) => Plotly.purge(element));
    };
  }, []);
  return (
    <div className="plot-box">
      {error && (
        <p className="pattern-error" role="alert">
          {error}
        </p>
      )}
      <div ref={host} className="plot" data-testid={`plot-${spec.id}`} />
    </div>
  );
}

export function SweepPlots({
  results,
  onPlotReady,
}: {
  results: readonly SampleResult[];
  onPlotReady: (id: 'accuracy' | 'cost' | 'speedup', element: HTMLDivElement) => void;
}) {
  const [filter, setFilter] = useState<PlotFilter>({ task: null, length: null });
  const [axis, setAxis] = useState<SparsityAxis>('measured');
  const ids = { task: useId(), length: useId(), axis: useId() };
  const sparsityTitle =
    axis === 'measured' ? 'sparsity the kernels counted' : 'target sparsity (asked)';
  const axes = useMemo(() => resultAxes(results), [results]);
  const specs = useMemo<PlotSpec[]>(
    () => [
      {
        id: 'accuracy',
        title: 'Task score against sparsity',
        xTitle: sparsityTitle,
        yTitle: 'task score (mean ± SE)',
        data: accuracyVsSparsity(results, filter, axis),
        denseX: 'across',
      },
      {
        id: 'cost',
        title: 'Task score against cost (isoCost)',
        xTitle: 'cost relative to dense (prefill FLOPs or decode bytes/token)',
        yTitle: 'task score (mean ± SE)',
        data: accuracyVsCost(results, filter),
        denseX: 1,
      },
      {
        id: 'speedup',
        title: 'Speed-up against dense (GPU time)',
        xTitle: sparsityTitle,
        yTitle: 'speed-up × (mean ± SE)',
        data: speedupVsSparsity(results, filter, axis),
        denseX: 'across',
      },
    ],
    [results, filter, axis, sparsityTitle],
  );
  return (
    <div className="plots">
      <div className="field-row plot-filters">
        <div className="field">
          <label htmlFor={ids.task}>Task</label>
          <select
            id={ids.task}
            value={filter.task ?? ''}
            onChange={(e) => setFilter({ ...filter, task: e.target.value || null })}
          >
            <option value="">All tasks</option>
            {axes.tasks.map((t) => (
              <option key={t} value={t}>
                {getTask(t).label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={ids.length}>Length</label>
          <select
            id={ids.length}
            value={filter.length ?? ''}
            onChange={(e) =>
              setFilter({ ...filter, length: e.target.value ? Number(e.target.value) : null })
            }
          >
            <option value="">All lengths</option>
            {axes.lengths.map((n) => (
              <option key={n} value={n}>
                {n} tokens
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={ids.axis}>Sparsity axis</label>
          <select
            id={ids.axis}
            data-testid="plot-sparsity-axis"
            value={axis}
            title="Adaptive methods (FlexPrefill, BLASST) reach other sparsities than asked"
            onChange={(e) => setAxis(e.target.value as SparsityAxis)}
          >
            <option value="measured">Counted by the kernels</option>
            <option value="target">Target (asked)</option>
          </select>
        </div>
      </div>
      {specs.map((spec) => (
        <Plot key={spec.id} spec={spec} onReady={onPlotReady} />
      ))}
      <SweepTable results={results} filter={filter} />
      <SweepLengths results={results} task={filter.task} />
    </div>
  );
}
