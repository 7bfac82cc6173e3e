import { useMemo, useState, type FormEvent } from 'react';
import { recallPerHead } from '../kernels/attentionMap';
import { AttentionMapBars, type BarRow } from './AttentionMapBars';
import { AttentionMapCanvas } from './AttentionMapCanvas';
import { AttentionMapHeads } from './AttentionMapHeads';
import {
  KEPT_SWATCH,
  LOG_DECADES,
  LOST_SWATCH,
  type AttentionMapViewData,
} from './attentionMapRender';
import { useAttentionMapStore } from './attentionMapStore';
import { useModelStore } from './modelStore';
import { usePlayground } from './playgroundStore';

function Swatch({ colour, label }: { colour: string; label: string }) {
  return (
    <span style={{ display: 'inline-flex', alignItems: 'center', gap: 4 }}>
      <span
        aria-hidden="true"
        style={{ display: 'inline-block', width: 12, height: 12, background: colour }}
      />
      {label}
    </span>
  );
}

/** One layer's attention map from a run: the selected head, all heads, budgets, per-layer bars. */
export function AttentionMapView({ data }: { data: AttentionMapViewData }) {
  const { grid, tokens, method, headBudgets, layers, layer } = data;
  const [head, setHead] = useState(0);
  const [showKept, setShowKept] = useState(true);
  const selectedHead = Math.min(head, grid.numHeads - 1);
  const recall = useMemo(() => (grid.kept ? recallPerHead(grid) : null), [grid]);
  const overlay = showKept && grid.kept !== null;

  const headRows: BarRow[] = Array.from({ length: grid.numHeads }, (_, h) => ({
    label: `h${h}`,
    values: [headBudgets ? headBudgets[h] : null, recall ? recall[h] : null],
    selected: h === selectedHead,
  }));
  const layerRows: BarRow[] = layers.map((entry) => ({
    label: `layer ${entry.layer}`,
    values: [entry.sparsity, entry.recall],
    selected: entry.layer === layer,
  }));
  const queries = `${grid.qStart}\u2013${grid.qStart + grid.numQueries - 1}`;

  return (
    <div className="attention-map-view" style={{ display: 'grid', gap: 12 }}>
      <p className="muted" style={{ margin: 0 }}>
        {data.title} · layer {layer} · queries {queries} ·{' '}
        {method ? `kept by ${method}` : 'dense attention'}
      </p>
      {grid.kept && (
        <div
          className="segmented"
          role="group"
          aria-label="Colouring"
          style={{ justifySelf: 'start' }}
        >
          <button type="button" aria-pressed={!showKept} onClick={() => setShowKept(false)}>
            Dense mass
          </button>
          <button type="button" aria-pressed={showKept} onClick={() => setShowKept(true)}>
            Kept and dropped
          </button>
        </div>
      )}
      <div style={{ display: 'flex', flexWrap: 'wrap', gap: 16, alignItems: 'flex-start' }}>
        <div style={{ width: 520 }}>
          <AttentionMapCanvas grid={grid} head={selectedHead} showKept={overlay} tokens={tokens} />
          <div
            className="muted"
            style={{ display: 'flex', flexWrap: 'wrap', gap: 12, fontSize: '0.85em', marginTop: 4 }}
          >
            <Swatch colour={KEPT_SWATCH} label={overlay ? 'kept mass' : 'attention mass'} />
            {overlay && <Swatch colour={LOST_SWATCH} label="dropped: mass lost" />}
            {overlay && (
              <Swatch
                colour={`linear-gradient(90deg, ${KEPT_SWATCH}, ${LOST_SWATCH})`}
                label="partly kept"
              />
            )}
            <span>
              brightness: log scale, {LOG_DECADES} decades below the head&apos;s largest cell
            </span>
          </div>
        </div>
        <div style={{ display: 'grid', gap: 12, flex: '1 1 260px' }}>
          <AttentionMapHeads
            grid={grid}
            head={selectedHead}
            showKept={overlay}
            recall={recall}
            onSelect={setHead}
          />
          {(headBudgets || recall) && (
            <AttentionMapBars
              title={`Heads of layer ${layer}`}
              series={['budget (share of causal elements kept)', 'recall (dense mass kept)']}
              rows={headRows}
            />
          )}
          {layerRows.length > 0 && (
            <AttentionMapBars
              title="Layers"
              series={['measured sparsity (kernel-counted)', 'recall']}
              rows={layerRows}
            />
          )}
          {recall && (
            <p className="muted small-text" data-testid="attention-map-recall-basis">
              Recall is exact: the dense attention mass on the kept keys, summed by the map&rsquo;s
              kernel over all {grid.numQueries} mapped queries ({queries}) of layer {layer}. Map
              another layer for its recall.
            </p>
          )}
        </div>
      </div>
    </div>
  );
}

const PROMPT_ROWS = 3;

/** The prompt and layer to map; the kept mask follows the run settings' prefill method. */
function MapControls({ modelName, numLayers }: { modelName: string; numLayers: number }) {
  const run = usePlayground((s) => s.run);
  const running = useAttentionMapStore((s) => s.running);
  const error = useAttentionMapStore((s) => s.error);
  const mapPrompt = useAttentionMapStore((s) => s.mapPrompt);
  const [text, setText] = useState(run.customText);
  const [layer, setLayer] = useState(0);
  const method = run.prefill.method;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const attention = {
      prefill: { name: run.prefill.method, params: run.prefill.params },
      decode: { name: run.decode.method, params: run.decode.params },
    };
    void mapPrompt({ modelName, numLayers, text, attention, layer });
  };
  return (
    <form onSubmit={submit} noValidate style={{ display: 'grid', gap: 8, marginBottom: 12 }}>
      <label style={{ display: 'grid', gap: 4 }}>
        Prompt
        <textarea
          data-testid="attention-map-prompt"
          rows={PROMPT_ROWS}
          value={text}
          onChange={(event) => setText(event.target.value)}
        />
      </label>
      <div style={{ display: 'flex', flexWrap: 'wrap', gap: 12, alignItems: 'center' }}>
        <label>
          Layer{' '}
          <input
            data-testid="attention-map-layer"
            type="number"
            min={0}
            max={numLayers - 1}
            step={1}
            value={layer}
            onChange={(event) => setLayer(event.target.valueAsNumber)}
            style={{ width: '5em' }}
          />
        </label>
        <span className="muted">
          {method === 'dense'
            ? 'Dense prefill: no kept mask (choose a sparse prefill method in the run settings).'
            : `Kept mask: ${method} with the run settings' parameters.`}
        </span>
        <button type="submit" data-testid="attention-map-run" disabled={running}>
          {running ? 'Mapping…' : 'Map attention'}
        </button>
      </div>
      {error && (
        <p role="alert" className="muted" data-testid="attention-map-error" style={{ margin: 0 }}>
          {error}
        </p>
      )}
    </form>
  );
}

/** The page's panel: the map of the last mapped prompt, or how to get one. */
export function AttentionMapPanel() {
  const data = useAttentionMapStore((s) => s.data);
  const load = useModelStore((s) => s.load);
  return (
    <section className="panel" aria-labelledby="attention-map-title">
      <div className="panel-head">
        <h2 id="attention-map-title">Attention map</h2>
      </div>
      {load.status === 'loaded' && (
        <MapControls modelName={load.summary.name} numLayers={load.summary.layers} />
      )}
      {data ? (
        <AttentionMapView data={data} />
      ) : (
        <p className="muted">
          {load.status === 'loaded'
            ? 'Map a prompt to see its attention.'
            : 'Load a model and run a prompt to see its attention.'}
        </p>
      )}
    </section>
  );
}
