import { useId, useMemo } from 'react';
import {
  isDataDependent,
  previewMethods,
  PREVIEW_HEAD_DIM,
  PREVIEW_SEED,
} from '../engine/maskPreview';
import { getMethod } from '../methods/registry';
import { MAX_SPARSITY, type MethodName } from '../methods/types';
import { CELL_LEGEND, MaskCanvas } from './MaskCanvas';
import { ParamControl } from './ParamControl';
import { PatternEditor } from './PatternEditor';
import { TokenMaskCanvas } from './TokenMaskCanvas';
import { usePlayground } from './playgroundStore';
import { useAppStore, type PatternError } from './store';
import { formatPercent } from './format';

const SEQ_LENS = [256, 512, 1024, 2048];

function PatternErrorView({ error, code }: { error: PatternError; code: boolean }) {
  return (
    <div className="pattern-error" role="alert" data-testid="pattern-error">
      {code && error.line !== null && <span className="badge badge-fail">line {error.line}</span>}{' '}
      {error.message}
    </div>
  );
}

export function PatternsPanel() {
  const patterns = useAppStore((s) => s.patterns);
  const setMethod = useAppStore((s) => s.setPatternMethod);
  const setSeqLen = useAppStore((s) => s.setPatternSeqLen);
  const setSparsity = useAppStore((s) => s.setPatternSparsity);
  const setParam = useAppStore((s) => s.setPatternParam);
  const setHead = useAppStore((s) => s.setPatternHead);
  const releasePattern = useAppStore((s) => s.releasePattern);
  const setLevel = useAppStore((s) => s.setPatternLevel);
  const setRunMethod = usePlayground((s) => s.setRunMethod);
  const runPrefill = usePlayground((s) => s.run.prefill.method);
  const methods = useMemo(() => previewMethods(), []);
  const method = getMethod(patterns.method);
  const params = patterns.params[patterns.method] ?? {};
  const codeSpec = method.params.find((p) => p.kind === 'code');
  const { preview, error } = patterns;
  // After an error the last good picture stays, dimmed, while the readouts say there is none.
  const current = preview;
  const valid = current && !error ? current : null;
  const tokens = patterns.tokenPicture;
  const showTokens = patterns.level === 'tokens' && tokens !== null;
  const ids = { method: useId(), seqLen: useId(), sparsity: useId() };

  return (
    <section className="panel" aria-labelledby="patterns-title">
      <div className="panel-head">
        <h2 id="patterns-title">Sparsity patterns</h2>
        <span className="muted small-text" aria-live="polite">
          {patterns.computing ? 'planning…' : valid ? `planned in ${valid.ms.toFixed(0)} ms` : ''}
        </span>
      </div>
      <p className="muted">
        What each prefill method keeps, block by block, on a {PREVIEW_HEAD_DIM}-dim toy attention
        with 2 heads. The sparsity is counted from the block mask (kept causal interactions), not
        estimated.
      </p>
      <div className="patterns">
        <div className="pattern-controls">
          <div className="field">
            <label htmlFor={ids.method}>Method</label>
            <select
              id={ids.method}
              data-testid="pattern-method"
              value={patterns.method}
              onChange={(e) => setMethod(e.target.value as MethodName)}
            >
              {methods.map((m) => (
                <option key={m.name} value={m.name}>
                  {m.label}
                </option>
              ))}
            </select>
          </div>
          <div className="method-info">
            <p>{method.description}</p>
            <p className="citation">
              <cite>{method.citation}</cite>
            </p>
          </div>
          <div className="field">
            <label htmlFor={ids.seqLen}>Sequence length</label>
            <select
              id={ids.seqLen}
              value={patterns.seqLen}
              onChange={(e) => setSeqLen(Number(e.target.value))}
            >
              {SEQ_LENS.map((n) => (
                <option key={n} value={n}>
                  {n} tokens
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={ids.sparsity}>
              Target sparsity <output className="value">{formatPercent(patterns.sparsity)}</output>
            </label>
            <input
              id={ids.sparsity}
              data-testid="sparsity-slider"
              type="range"
              min={0}
              max={MAX_SPARSITY}
              step={0.05}
              value={patterns.sparsity}
              onChange={(e) => setSparsity(Number(e.target.value))}
            />
            <span className="param-help">{method.sparsityMapping}</span>
          </div>
          {method.params.length > 0 && <h3>Parameters</h3>}
          {method.params.map((spec) => (
            <ParamControl
              key={spec.key}
              spec={spec}
              value={params[spec.key]}
              onChange={(value) => setParam(spec.key, value)}
            />
          ))}
          {error && !codeSpec && <PatternErrorView error={error} code={false} />}
        </div>

        <div className="mask-view">
          <div className="sparsity-readout">
            <div>
              <span className="readout-label">Measured sparsity</span>
              <span className="readout-value" data-testid="measured-sparsity">
                {valid ? formatPercent(valid.measuredSparsity) : '—'}
              </span>
            </div>
            <div>
              <span className="readout-label">Asked</span>
              <span className="readout-value muted">{formatPercent(patterns.sparsity)}</span>
            </div>
            {valid && (
              <div>
                <span className="readout-label">Head {patterns.head}</span>
                <span className="readout-value muted">
                  {formatPercent(valid.headSparsity[patterns.head] ?? 0)}
                </span>
              </div>
            )}
          </div>
          {current && (
            <>
              <div className="mask-meta">
                <div className="segmented" role="group" aria-label="Head">
                  {current.headSparsity.map((_, h) => (
                    <button
                      key={h}
                      type="button"
                      aria-pressed={patterns.head === h}
                      onClick={() => setHead(h)}
                    >
                      Head {h}
                    </button>
                  ))}
                </div>
                <div className="segmented" role="group" aria-label="Picture">
                  <button
                    type="button"
                    aria-pressed={patterns.level === 'blocks'}
                    onClick={() => setLevel('blocks')}
                  >
                    Blocks
                  </button>
                  <button
                    type="button"
                    aria-pressed={patterns.level === 'tokens'}
                    onClick={() => setLevel('tokens')}
                  >
                    Tokens
                  </button>
                </div>
                <span className="muted small-text">
                  {current.numQueryBlocks}×{current.numKeyBlocks} blocks of {current.blockQ}×
                  {current.blockK} · {current.counts.full} full, {current.counts.partial} partial of{' '}
                  {current.counts.causal} causal (all heads)
                  {showTokens &&
                    (tokens.size === tokens.seqLen
                      ? ' · one pixel per token'
                      : ` · ${tokens.seqLen / tokens.size}×${tokens.seqLen / tokens.size} tokens per pixel, shaded by the share kept`)}
                </span>
              </div>
              <div className={error ? 'mask-frame stale' : 'mask-frame'}>
                <span className="axis-label axis-keys">keys →</span>
                <span className="axis-label axis-queries">queries →</span>
                {showTokens ? (
                  <TokenMaskCanvas picture={tokens} head={patterns.head} />
                ) : (
                  <MaskCanvas preview={current} head={patterns.head} />
                )}
              </div>
            </>
          )}
          <ul className="legend">
            {CELL_LEGEND.map((entry) => (
              <li key={entry.className}>
                <span className={`swatch ${entry.className}`} aria-hidden="true" />
                {entry.label}
              </li>
            ))}
          </ul>
          {isDataDependent(patterns.method) && (
            <p className="data-note" data-testid="random-data-note">
              This method chooses blocks from the attention scores: here it plans on seeded random
              q/k (seed {PREVIEW_SEED}), not a model&rsquo;s, so the picture shows its mechanics,
              not a real head&rsquo;s pattern.
            </p>
          )}
        </div>
      </div>
      {codeSpec && patterns.held && (
        <div className="notice held-notice" role="status" data-testid="pattern-held">
          <span>
            This pattern came with a shared link and has not run. Read it below, then run it.
          </span>
          <button type="button" className="primary" onClick={releasePattern}>
            Run this pattern
          </button>
        </div>
      )}
      {codeSpec && (
        <>
          <PatternEditor
            value={String(params[codeSpec.key] ?? codeSpec.default)}
            error={error}
            onChange={(source) => setParam(codeSpec.key, source)}
          />
          {error && <PatternErrorView error={error} code />}
          <div className="actions">
            <button
              type="button"
              data-testid="use-pattern"
              disabled={runPrefill === 'user_pattern'}
              onClick={() => {
                setRunMethod('prefill', 'user_pattern');
                document.getElementById('run-title')?.scrollIntoView({ behavior: 'smooth' });
              }}
            >
              {runPrefill === 'user_pattern'
                ? 'The run panel uses this pattern for prefill'
                : 'Use this pattern for prefill in the run panel'}
            </button>
          </div>
        </>
      )}
    </section>
  );
}
