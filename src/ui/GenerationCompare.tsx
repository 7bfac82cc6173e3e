import type { PhaseMeasurement, SampleTimings } from '../engine/sweepTypes';
import { getMethod } from '../methods/registry';
import { firstDivergence, type GenerationView, type RunState } from './playgroundStore';
import { formatMs, formatPercent, formatPlanning } from './format';

function methodLabel(name: string): string {
  return getMethod(name).label;
}

/** The generated tokens, the divergent one marked, the rest after it dimmed. */
function TokenStream({
  view,
  divergence,
  testId,
}: {
  view: GenerationView;
  divergence: number | null;
  testId: string;
}) {
  return (
    <p className="token-stream" data-testid={testId}>
      {view.tokens.map((token, i) => (
        <span
          key={i}
          className={
            divergence === null || i < divergence
              ? 'token'
              : i === divergence
                ? 'token diverged'
                : 'token after'
          }
          data-testid={i === divergence ? `${testId}-divergent` : undefined}
          title={i === divergence ? `first divergent token (#${i + 1})` : `token ${i + 1}`}
        >
          {token.text}
        </span>
      ))}
      {!view.outcome && !view.error && <span className="caret" aria-hidden="true" />}
    </p>
  );
}

/** Kernel-measured sparsity per layer as bars. */
function LayerBars({ phase, measurement }: { phase: string; measurement: PhaseMeasurement }) {
  if (measurement.layers.length === 0) return null;
  return (
    <div className="layer-bars" data-testid={`layer-bars-${phase}`}>
      <span className="readout-label">
        {phase}: {formatPercent(measurement.sparsity)} measured
      </span>
      <div className="bars" role="img" aria-label={`${phase} measured sparsity per layer`}>
        {measurement.layers.map((layer) => (
          <div
            key={layer.layer}
            className="bar"
            title={`layer ${layer.layer}: ${formatPercent(layer.sparsity)} (${layer.touched} of ${layer.total} ${layer.unit} touched, ${layer.method})`}
          >
            <div className="bar-fill" style={{ height: `${Math.max(0, layer.sparsity) * 100}%` }} />
          </div>
        ))}
      </div>
    </div>
  );
}

function timingLine(timings: SampleTimings): string {
  const perToken = timings.decodeTokens > 0 ? timings.decodeMs / timings.decodeTokens : NaN;
  const source = timings.source === 'timestamp-query' ? 'GPU timestamps' : 'wall clock';
  return (
    `prefill ${formatMs(timings.prefillMs)} (${timings.prefillTokens} tokens) · decode ` +
    `${Number.isFinite(perToken) ? `${formatMs(perToken)}/token` : '—'} · ${source}`
  );
}

function Side({
  title,
  view,
  divergence,
  testId,
}: {
  title: string;
  view: GenerationView;
  divergence: number | null;
  testId: string;
}) {
  const { outcome } = view;
  const planning = outcome ? formatPlanning(outcome.measured) : null;
  return (
    <div className="generation" data-testid={testId}>
      <h3>{title}</h3>
      <TokenStream view={view} divergence={divergence} testId={`${testId}-tokens`} />
      {view.error && <p className="muted">Stopped: {view.error}</p>}
      {outcome && (
        <dl className="run-facts">
          {outcome.score !== null && (
            <>
              <dt>Task score</dt>
              <dd data-testid={`${testId}-score`}>{outcome.score.toFixed(2)}</dd>
            </>
          )}
          <dt>Time</dt>
          <dd>{timingLine(outcome.timings)}</dd>
          {planning && (
            <>
              <dt>Planning</dt>
              <dd data-testid={`${testId}-planning`}>{planning}</dd>
            </>
          )}
        </dl>
      )}
      {outcome && (
        <div className="layer-bar-pair">
          <LayerBars phase="prefill" measurement={outcome.measured.prefill} />
          <LayerBars phase="decode" measurement={outcome.measured.decode} />
        </div>
      )}
    </div>
  );
}

function msPerToken(timings: SampleTimings): number {
  return timings.decodeTokens > 0 ? timings.decodeMs / timings.decodeTokens : 0;
}

function speedup(dense: number, sparse: number): string {
  return dense > 0 && sparse > 0 ? `${(dense / sparse).toFixed(2)}×` : '—';
}

export function GenerationCompare({ state }: { state: RunState }) {
  const { dense, sparse } = state;
  const finished = dense?.outcome && sparse?.outcome;
  const divergence =
    dense && sparse && sparse.tokens.length > 0
      ? firstDivergence(
          dense.tokens.map((t) => t.id),
          sparse.tokens.map((t) => t.id),
        )
      : null;
  // While the sparse side is still streaming, a shorter stream is not yet a divergence.
  const shown =
    divergence !== null && !finished && sparse && divergence >= sparse.tokens.length
      ? null
      : divergence;
  const sparseTitle = sparse
    ? `${methodLabel(sparse.attention.prefill.name)} prefill + ${methodLabel(sparse.attention.decode.name)} decode`
    : '';
  const answer = dense?.outcome?.answer ?? sparse?.outcome?.answer;
  return (
    <div className="compare" data-testid="compare">
      {finished && (
        <p className="compare-summary" data-testid="compare-summary">
          {shown === null
            ? 'The two generations are identical.'
            : `They part at token ${shown + 1}.`}{' '}
          Speed-up against dense: prefill{' '}
          <strong data-testid="speedup-prefill">
            {sparse.attention.prefill.name === 'dense'
              ? 'dense in both'
              : speedup(dense.outcome!.timings.prefillMs, sparse.outcome!.timings.prefillMs)}
          </strong>
          , decode{' '}
          <strong data-testid="speedup-decode">
            {sparse.attention.decode.name === 'dense'
              ? 'dense in both'
              : speedup(msPerToken(dense.outcome!.timings), msPerToken(sparse.outcome!.timings))}
          </strong>
          {answer ? (
            <>
              {' '}
              · gold answer: <code>{answer}</code>
            </>
          ) : null}
        </p>
      )}
      <div className="compare-columns">
        {dense && <Side title="Dense" view={dense} divergence={shown} testId="dense" />}
        {sparse && <Side title={sparseTitle} view={sparse} divergence={shown} testId="sparse" />}
      </div>
    </div>
  );
}
