import {
  describeShape,
  selfCheckCases,
  selfCheckTolerance,
  type SelfCheckResult,
} from '../engine/selfCheck';
import { formatError } from './format';
import { useAppStore, type SelfCheckState } from './store';

type Verdict = 'idle' | 'running' | 'passed' | 'failed';

function verdictOf(check: SelfCheckState): Verdict {
  if (check.status !== 'done') return check.status;
  const complete = selfCheckCases.every((_, i) => check.results[i]?.passed);
  return complete ? 'passed' : 'failed';
}

function summary(check: SelfCheckState, verdict: Verdict, gpuMissing: boolean): string {
  const total = selfCheckCases.length;
  const done = check.results.filter(Boolean).length;
  const passed = check.results.filter((r) => r?.passed).length;
  switch (verdict) {
    case 'idle':
      return gpuMissing ? 'Not run: the check needs a WebGPU device' : 'Waiting for the GPU…';
    case 'running':
      return `Running case ${Math.min(done + 1, total)} of ${total}…`;
    case 'passed':
      return `All ${total} cases passed`;
    case 'failed':
      return passed === 0
        ? `None of the ${total} cases passed`
        : `${total - passed} of ${total} cases did not pass`;
  }
}

/** What a case without a result shows: the running one, the queued ones, or those that won't run. */
function pendingLabel(check: SelfCheckState, index: number, gpuMissing: boolean): string {
  if (check.status === 'done' || gpuMissing) return 'not run';
  if (check.status === 'running' && index === check.results.filter(Boolean).length) {
    return 'running…';
  }
  return 'waiting';
}

function ResultCells({ result, pending }: { result?: SelfCheckResult; pending: string }) {
  if (!result) {
    return (
      <>
        <td className="num muted">—</td>
        <td className="num muted">—</td>
        <td className="result muted">{pending}</td>
      </>
    );
  }
  return (
    <>
      <td className="num">{formatError(result.maxAbsError)}</td>
      <td className="num">{formatError(result.relativeError)}</td>
      <td className="result">
        <span className={result.passed ? 'badge badge-pass' : 'badge badge-fail'}>
          {result.passed ? 'pass' : 'fail'}
        </span>
      </td>
    </>
  );
}

export function SelfCheckPanel() {
  const check = useAppStore((s) => s.selfCheck);
  const gpuStatus = useAppStore((s) => s.gpu.status);
  const gpuMissing = gpuStatus === 'unavailable' || gpuStatus === 'failed';
  const rerun = useAppStore((s) => s.runSelfCheck);
  const verdict = verdictOf(check);

  return (
    <section className="panel" aria-labelledby="check-title">
      <div className="panel-head">
        <h2 id="check-title">Dense attention self-check</h2>
        <button
          type="button"
          disabled={gpuStatus !== 'ready' || check.status === 'running'}
          onClick={() => void rerun()}
        >
          Run again
        </button>
      </div>
      <p className="muted">
        Each case runs the GPU kernels on seeded random data and compares the output with a float64
        CPU reference (for f16 K/V, on the same rounded values). A case passes when the max abs
        error, relative to the largest output, is within the tolerance.
      </p>
      <p
        className={`summary summary-${verdict}`}
        data-testid="selfcheck-summary"
        data-state={verdict}
      >
        {summary(check, verdict, gpuMissing)}
      </p>
      <div className="table-wrap">
        <table className="results">
          <thead>
            <tr>
              <th scope="col">Case</th>
              <th scope="col" className="num">
                Tolerance
              </th>
              <th scope="col" className="num">
                Max abs error
              </th>
              <th scope="col" className="num">
                Relative error
              </th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {selfCheckCases.map((c, i) => {
              const result = check.results[i];
              const pending = pendingLabel(check, i, gpuMissing);
              return (
                <tr key={c.name} data-testid="selfcheck-case">
                  <th scope="row">
                    <span className="case-name">{c.name}</span>
                    <span className="case-shape">{describeShape(c)}</span>
                    {result?.error && <span className="case-error">{result.error}</span>}
                  </th>
                  <td className="num">{formatError(selfCheckTolerance[c.dtype], 0)}</td>
                  <ResultCells result={result} pending={pending} />
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}
