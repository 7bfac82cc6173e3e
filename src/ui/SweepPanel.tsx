import { lazy, Suspense, useCallback, useId, useRef, useState } from 'react';
import type { SampleResult } from '../engine/sweepTypes';
import { methodsFor } from '../methods/registry';
import type { Phase } from '../methods/types';
import { MAX_KEPT_MASK_TOKENS } from '../model/runtime/attentionMap';
import { TASKS } from '../tasks/registry';
import { useEngine } from './engineBinding';
import { downloadText, downloadUrl, resultsToCsv, resultsToJson } from './exportResults';
import { usePlayground } from './playgroundStore';
import { useModelStore } from './modelStore';
import { SavedSweeps } from './SavedSweeps';
import {
  LENGTHS,
  MAX_NEW_TOKENS_LIMIT,
  MAX_RECALL_LAYER,
  MAX_SAMPLES,
  PAPER_SPARSITIES,
  parseSparsities,
  sweepProblem,
} from './runConfig';

// plotly is large: its chunk loads when the first results are to be drawn.
const SweepPlots = lazy(() => import('./SweepPlots').then((m) => ({ default: m.SweepPlots })));

type PlotId = 'accuracy' | 'cost' | 'speedup';

function clampInt(text: string, min: number, max: number): number {
  const value = Math.floor(Number(text));
  return Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : min;
}

/** Reads an exported results file back; throws saying what is wrong with it. */
function parseResultsFile(text: string): SampleResult[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error('the file is not JSON; pick a results file exported from this page');
  }
  const results = (data as { results?: unknown } | null)?.results;
  if (!Array.isArray(results)) {
    throw new Error('the file has no "results" list; pick a results file exported from this page');
  }
  results.forEach((r: Partial<SampleResult>, i) => {
    if (
      typeof r?.key !== 'string' ||
      typeof r.pointId !== 'string' ||
      typeof r.score !== 'number' ||
      typeof r.measured !== 'object' ||
      typeof r.timings !== 'object' ||
      typeof r.cost !== 'object'
    ) {
      throw new Error(`result ${i} is not a sweep result (key, pointId, score, measured, ...)`);
    }
  });
  return results as SampleResult[];
}

/** The sparsities a text names, or none when it does not parse. */
function sparsitiesOf(text: string): number[] {
  try {
    return parseSparsities(text);
  } catch {
    return [];
  }
}

function MethodChecks({ phase }: { phase: Phase }) {
  const list = phase === 'prefill' ? 'prefillMethods' : 'decodeMethods';
  const chosen = usePlayground((s) => s.sweep[list]);
  const toggle = usePlayground((s) => s.toggleSweepItem);
  return (
    <fieldset className="checks" data-testid={`sweep-${phase}-methods`}>
      <legend>{phase === 'prefill' ? 'Prefill methods' : 'Decode methods'}</legend>
      {methodsFor(phase)
        .filter((m) => m.name !== 'dense')
        .map((m) => (
          <label key={m.name} className="check">
            <input
              type="checkbox"
              value={m.name}
              checked={chosen.includes(m.name)}
              onChange={() => toggle(list, m.name)}
            />
            {m.label}
          </label>
        ))}
    </fieldset>
  );
}

export function SweepPanel() {
  const sweep = usePlayground((s) => s.sweep);
  const state = usePlayground((s) => s.sweepState);
  const runRunning = usePlayground((s) => s.runState.status === 'running');
  const setSweep = usePlayground((s) => s.setSweep);
  const toggleItem = usePlayground((s) => s.toggleSweepItem);
  const toggleLength = usePlayground((s) => s.toggleSweepLength);
  const startSweep = usePlayground((s) => s.startSweep);
  const cancel = usePlayground((s) => s.cancel);
  const showResults = usePlayground((s) => s.showResults);
  const sharedModel = usePlayground((s) => s.sharedModel);
  const { engine, unavailable, modelName } = useEngine();
  const [sparsityText, setSparsityText] = useState(sweep.sparsities.join(', '));
  const [sparsityError, setSparsityError] = useState<string | null>(null);
  // Sparsities set elsewhere (a link, a saved sweep) replace the text unless it already says so.
  const [shownSparsities, setShownSparsities] = useState(sweep.sparsities);
  if (sweep.sparsities !== shownSparsities) {
    setShownSparsities(sweep.sparsities);
    if (sparsitiesOf(sparsityText).join() !== sweep.sparsities.join()) {
      setSparsityText(sweep.sparsities.join(', '));
    }
  }
  const [fileError, setFileError] = useState<string | null>(null);
  const plots = useRef(new Map<PlotId, HTMLDivElement>());
  const ids = { samples: useId(), tokens: useId(), sparsities: useId(), file: useId() };
  const measuresRecall = sweep.recallLayer !== undefined;
  const maxRecallLayer = useModelStore((s) =>
    s.load.status === 'loaded' ? s.load.summary.layers - 1 : MAX_RECALL_LAYER,
  );
  const running = state.status === 'running';
  const problem = sweepProblem(sweep) ?? sparsityError;
  const blocked =
    unavailable ?? (runRunning ? 'A comparison run is going on; wait for it.' : null) ?? problem;

  const onPlotReady = useCallback((id: PlotId, element: HTMLDivElement) => {
    plots.current.set(id, element);
  }, []);

  const setSparsities = (text: string) => {
    setSparsityText(text);
    try {
      setSweep({ sparsities: parseSparsities(text) });
      setSparsityError(null);
    } catch (error) {
      setSparsityError(`Sparsities: ${(error as Error).message}.`);
    }
  };

  const exportPng = async (id: PlotId) => {
    const element = plots.current.get(id);
    if (!element) return;
    const { loadPlotly } = await import('./SweepPlots');
    const Plotly = await loadPlotly();
    const url = await Plotly.toImage(element, { format: 'png', width: 1280, height: 720 });
    downloadUrl(`sweep-${id}.png`, url);
  };

  const importFile = async (file: File) => {
    try {
      showResults(parseResultsFile(await file.text()));
      setFileError(null);
    } catch (error) {
      setFileError(`${file.name}: ${(error as Error).message}.`);
    }
  };

  const progress = state.progress;
  const fraction = progress && progress.total > 0 ? progress.done / progress.total : 0;
  const hasResults = state.results.length > 0;

  return (
    <section className="panel" aria-labelledby="sweep-title" data-testid="sweep-panel">
      <div className="panel-head">
        <h2 id="sweep-title">The cost of sparsity</h2>
        <span className="muted small-text">
          <kbd>s</kbd> start · <kbd>Esc</kbd> cancel
        </span>
      </div>
      <p className="muted">
        Every method at every sparsity on the same samples, against dense. A prefill method runs
        with dense decode, a decode method with dense prefill. Plots fill in as results arrive.
      </p>
      <div className="sweep-form">
        <fieldset className="checks" data-testid="sweep-tasks">
          <legend>Tasks</legend>
          {TASKS.map((t) => (
            <label key={t.name} className="check">
              <input
                type="checkbox"
                value={t.name}
                checked={sweep.tasks.includes(t.name)}
                onChange={() => toggleItem('tasks', t.name)}
              />
              {t.label}
            </label>
          ))}
        </fieldset>
        <fieldset className="checks" data-testid="sweep-lengths">
          <legend>Lengths (tokens)</legend>
          {LENGTHS.map((n) => (
            <label key={n} className="check">
              <input
                type="checkbox"
                value={n}
                checked={sweep.lengths.includes(n)}
                onChange={() => toggleLength(n)}
              />
              {n}
            </label>
          ))}
        </fieldset>
        <MethodChecks phase="prefill" />
        <MethodChecks phase="decode" />
        <div className="sweep-numbers">
          <div className="field">
            <label htmlFor={ids.sparsities}>Target sparsities</label>
            <input
              id={ids.sparsities}
              type="text"
              data-testid="sweep-sparsities"
              value={sparsityText}
              onChange={(e) => setSparsities(e.target.value)}
            />
            <button
              type="button"
              className="small"
              onClick={() => setSparsities(PAPER_SPARSITIES.join(', '))}
            >
              The paper&rsquo;s grid
            </button>
          </div>
          <div className="field">
            <label htmlFor={ids.samples}>Samples per task and length</label>
            <input
              id={ids.samples}
              type="number"
              min={1}
              max={MAX_SAMPLES}
              value={sweep.samples}
              onChange={(e) => setSweep({ samples: clampInt(e.target.value, 1, MAX_SAMPLES) })}
            />
          </div>
          <div className="field">
            <label className="check">
              <input
                type="checkbox"
                data-testid="sweep-recall"
                checked={measuresRecall}
                onChange={(e) => setSweep({ recallLayer: e.target.checked ? 0 : undefined })}
              />
              Measure attention recall at layer
            </label>
            <input
              type="number"
              aria-label="Recall layer"
              data-testid="sweep-recall-layer"
              min={0}
              max={maxRecallLayer}
              disabled={!measuresRecall}
              value={sweep.recallLayer ?? 0}
              onChange={(e) =>
                setSweep({ recallLayer: clampInt(e.target.value, 0, maxRecallLayer) })
              }
            />
            <span className="param-help">
              Dense attention mass on the kept keys, from one more run per sample: exact up to{' '}
              {MAX_KEPT_MASK_TOKENS} prompt tokens, on sampled queries beyond.
            </span>
          </div>
          <div className="field">
            <label htmlFor={ids.tokens}>New tokens per sample</label>
            <input
              id={ids.tokens}
              type="number"
              min={1}
              max={MAX_NEW_TOKENS_LIMIT}
              value={sweep.maxNewTokens}
              onChange={(e) =>
                setSweep({ maxNewTokens: clampInt(e.target.value, 1, MAX_NEW_TOKENS_LIMIT) })
              }
            />
          </div>
        </div>
      </div>
      {sharedModel && modelName !== sharedModel && (
        <p className="notice">
          This link was made with the model <strong>{sharedModel}</strong>; load it in the model
          picker to reproduce its numbers.
        </p>
      )}
      <div className="actions">
        <button
          type="button"
          className="primary"
          data-testid="sweep-start"
          disabled={running || blocked !== null}
          title={blocked ?? undefined}
          onClick={() => engine && void startSweep(engine)}
        >
          Start sweep
        </button>
        {running && (
          <button type="button" data-testid="sweep-cancel" onClick={() => cancel()}>
            Cancel
          </button>
        )}
        <span className="muted" role="status" data-testid="sweep-status">
          {state.status === 'failed' ? '' : (state.message ?? (running ? '' : (blocked ?? '')))}
        </span>
      </div>
      {state.status === 'failed' && state.message && (
        <p className="pattern-error" role="alert" data-testid="sweep-error">
          {state.message}
        </p>
      )}
      {progress && (
        <div className="progress" data-testid="sweep-progress">
          <progress value={progress.done} max={Math.max(1, progress.total)} />
          <span>
            {progress.done} of {progress.total} runs ({(fraction * 100).toFixed(0)}%)
            {progress.resumed > 0 && `, ${progress.resumed} from an earlier session`}
            {progress.errors > 0 && `, ${progress.errors} failed`}
          </span>
        </div>
      )}
      <div className="actions exports">
        <button
          type="button"
          data-testid="export-csv"
          disabled={!hasResults}
          onClick={() => downloadText('sweep-results.csv', resultsToCsv(state.results), 'text/csv')}
        >
          Results as CSV
        </button>
        <button
          type="button"
          data-testid="export-json"
          disabled={!hasResults}
          onClick={() =>
            downloadText(
              'sweep-results.json',
              resultsToJson(sweep, modelName, state.results),
              'application/json',
            )
          }
        >
          Results as JSON
        </button>
        {(['accuracy', 'cost', 'speedup'] as const).map((id) => (
          <button
            key={id}
            type="button"
            data-testid={`export-png-${id}`}
            disabled={!hasResults}
            onClick={() => void exportPng(id)}
          >
            {id === 'accuracy' ? 'Score plot' : id === 'cost' ? 'Cost plot' : 'Speed-up plot'} as
            PNG
          </button>
        ))}
        <label className="file-button" htmlFor={ids.file}>
          Open results (JSON)
        </label>
        <input
          id={ids.file}
          className="visually-hidden"
          type="file"
          accept="application/json,.json"
          data-testid="import-results"
          disabled={running}
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void importFile(file);
            e.target.value = '';
          }}
        />
      </div>
      <SavedSweeps />
      {fileError && (
        <p className="pattern-error" role="alert" data-testid="import-error">
          {fileError}
        </p>
      )}
      {hasResults ? (
        <Suspense fallback={<p className="muted">Loading the plots…</p>}>
          <SweepPlots results={state.results} onPlotReady={onPlotReady} />
        </Suspense>
      ) : (
        <p className="muted" data-testid="sweep-empty">
          No results yet: start a sweep, or open a results file exported from this page.
        </p>
      )}
    </section>
  );
}
