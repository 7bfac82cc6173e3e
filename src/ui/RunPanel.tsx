import { useId } from 'react';
import { MAX_SPARSITY } from '../methods/types';
import { TASKS } from '../tasks/registry';
import { useEngine } from './engineBinding';
import { GenerationCompare } from './GenerationCompare';
import { MethodPicker } from './MethodPicker';
import { usePlayground } from './playgroundStore';
import { LENGTHS, MAX_NEW_TOKENS_LIMIT } from './runConfig';
import { useAppStore } from './store';
import { formatPercent } from './format';

/** Pick a prompt and a method per phase, run dense and sparse, compare the two generations. */
export function RunPanel() {
  const run = usePlayground((s) => s.run);
  const runState = usePlayground((s) => s.runState);
  const sweepRunning = usePlayground((s) => s.sweepState.status === 'running');
  const setRun = usePlayground((s) => s.setRun);
  const setRunMethod = usePlayground((s) => s.setRunMethod);
  const setRunParam = usePlayground((s) => s.setRunParam);
  const setRunSparsity = usePlayground((s) => s.setRunSparsity);
  const setRunLength = usePlayground((s) => s.setRunLength);
  const startRun = usePlayground((s) => s.startRun);
  const cancel = usePlayground((s) => s.cancel);
  const patternSource = useAppStore((s) => String(s.patterns.params.user_pattern?.source ?? ''));
  const patternError = useAppStore((s) =>
    s.patterns.method === 'user_pattern' ? s.patterns.error : null,
  );
  const { engine, unavailable } = useEngine();
  const ids = {
    task: useId(),
    length: useId(),
    seed: useId(),
    text: useId(),
    question: useId(),
    sparsity: useId(),
    tokens: useId(),
  };
  const running = runState.status === 'running';
  const usesPattern = run.prefill.method === 'user_pattern' || run.decode.method === 'user_pattern';
  const blocked =
    unavailable ??
    (sweepRunning ? 'A sweep is running; cancel it or wait for it to finish.' : null) ??
    (usesPattern && patternError
      ? `Your pattern has an error (${patternError.message}); fix it in the pattern editor.`
      : null);

  return (
    <section className="panel" aria-labelledby="run-title" data-testid="run-panel">
      <div className="panel-head">
        <h2 id="run-title">Dense vs sparse</h2>
        <span className="muted small-text">
          <kbd>r</kbd> run · <kbd>Esc</kbd> cancel
        </span>
      </div>
      <p className="muted">
        One prompt, generated twice: with dense attention and with the methods you pick. The first
        token where they part is marked.
      </p>
      {unavailable && (
        <p className="notice" role="status" data-testid="run-needs-model">
          {unavailable}
        </p>
      )}
      <div className="run-grid">
        <fieldset className="prompt-picker">
          <legend>Prompt</legend>
          <div className="segmented" role="group" aria-label="Prompt source">
            <button
              type="button"
              aria-pressed={run.source === 'task'}
              onClick={() => setRun({ source: 'task' })}
            >
              A task
            </button>
            <button
              type="button"
              aria-pressed={run.source === 'custom'}
              onClick={() => setRun({ source: 'custom' })}
            >
              Your own text
            </button>
          </div>
          {run.source === 'task' ? (
            <>
              <div className="field">
                <label htmlFor={ids.task}>Task</label>
                <select
                  id={ids.task}
                  data-testid="run-task"
                  value={run.task}
                  onChange={(e) => setRun({ task: e.target.value })}
                >
                  {TASKS.map((t) => (
                    <option key={t.name} value={t.name}>
                      {t.label}
                    </option>
                  ))}
                </select>
                <span className="param-help">
                  {TASKS.find((t) => t.name === run.task)?.description}
                </span>
              </div>
              <div className="field-row">
                <div className="field">
                  <label htmlFor={ids.length}>Length</label>
                  <select
                    id={ids.length}
                    data-testid="run-length"
                    value={run.length}
                    onChange={(e) => setRunLength(Number(e.target.value))}
                  >
                    {LENGTHS.map((n) => (
                      <option key={n} value={n}>
                        {n} tokens
                      </option>
                    ))}
                  </select>
                </div>
                <div className="field">
                  <label htmlFor={ids.seed}>Sample seed</label>
                  <input
                    id={ids.seed}
                    type="number"
                    min={0}
                    step={1}
                    value={run.seed}
                    onChange={(e) =>
                      setRun({ seed: Math.max(0, Math.floor(Number(e.target.value))) })
                    }
                  />
                </div>
              </div>
            </>
          ) : (
            <>
              <div className="field">
                <label htmlFor={ids.text}>Your text</label>
                <textarea
                  id={ids.text}
                  data-testid="run-custom-text"
                  rows={5}
                  placeholder="Paste a long document…"
                  value={run.customText}
                  onChange={(e) => setRun({ customText: e.target.value })}
                />
              </div>
              <div className="field">
                <label htmlFor={ids.question}>Your question</label>
                <input
                  id={ids.question}
                  type="text"
                  data-testid="run-custom-question"
                  value={run.customQuestion}
                  onChange={(e) => setRun({ customQuestion: e.target.value })}
                />
              </div>
            </>
          )}
          <div className="field">
            <label htmlFor={ids.tokens}>New tokens</label>
            <input
              id={ids.tokens}
              type="number"
              min={1}
              max={MAX_NEW_TOKENS_LIMIT}
              value={run.maxNewTokens}
              onChange={(e) =>
                setRun({
                  maxNewTokens: Math.min(
                    MAX_NEW_TOKENS_LIMIT,
                    Math.max(1, Math.floor(Number(e.target.value) || 1)),
                  ),
                })
              }
            />
          </div>
        </fieldset>
        <div className="methods-column">
          <div className="field">
            <label htmlFor={ids.sparsity}>
              Target sparsity <output className="value">{formatPercent(run.sparsity, 0)}</output>
            </label>
            <input
              id={ids.sparsity}
              data-testid="run-sparsity"
              type="range"
              min={0}
              max={MAX_SPARSITY}
              step={0.05}
              value={run.sparsity}
              onChange={(e) => setRunSparsity(Number(e.target.value))}
            />
            <span className="param-help">
              Sets each method&rsquo;s sparsity knob through its paramsForSparsity at this length;
              the sparsity the kernels measured is shown after the run.
            </span>
          </div>
          <div className="method-pair">
            <MethodPicker
              phase="prefill"
              choice={run.prefill}
              onMethod={(m) => setRunMethod('prefill', m)}
              onParam={(k, v) => setRunParam('prefill', k, v)}
            />
            <MethodPicker
              phase="decode"
              choice={run.decode}
              onMethod={(m) => setRunMethod('decode', m)}
              onParam={(k, v) => setRunParam('decode', k, v)}
            />
          </div>
        </div>
      </div>
      <div className="actions">
        <button
          type="button"
          className="primary"
          data-testid="run-button"
          disabled={running || blocked !== null}
          title={blocked ?? undefined}
          onClick={() => engine && void startRun(engine, patternSource)}
        >
          {running ? 'Running…' : 'Run dense and sparse'}
        </button>
        {running && (
          <button type="button" data-testid="run-cancel" onClick={() => cancel()}>
            Cancel
          </button>
        )}
        <span className="muted" role="status" data-testid="run-status">
          {runState.status === 'failed'
            ? ''
            : (runState.message ?? (blocked && !unavailable ? blocked : ''))}
        </span>
      </div>
      {runState.status === 'failed' && runState.message && (
        <p className="pattern-error" role="alert" data-testid="run-error">
          {runState.message}
        </p>
      )}
      {(runState.dense || runState.sparse) && <GenerationCompare state={runState} />}
    </section>
  );
}
