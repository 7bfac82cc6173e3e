/**
 * The sweep's numbers per point, on the plots' samples: task score, the sparsity the kernels
 * measured in the method's phase, and the attention recall with how it was measured (exact over
 * every query, or on a sample of them), so a recall is never read as more than it is.
 */
import { useMemo } from 'react';
import { aggregateResults } from '../engine/sweep';
import type { PointAggregate, SampleResult, SweepPhase } from '../engine/sweepTypes';
import { getMethod } from '../methods/registry';
import { formatCount, formatPercent } from './format';
import { resultsMatching, type PlotFilter } from './sweepPlotData';

const PHASE_ORDER: Record<SweepPhase, number> = { baseline: 0, prefill: 1, decode: 2 };

function withError(mean: number, se: number, digits: number): string {
  const text = mean.toFixed(digits);
  return Number.isFinite(se) ? `${text} ± ${se.toFixed(digits)}` : text;
}

function recallText(recall: PointAggregate['recall']): string {
  if (recall === null) return '—';
  const se = Number.isFinite(recall.se) ? ` ± ${formatPercent(recall.se)}` : '';
  return `${formatPercent(recall.mean)}${se}`;
}

/** How a point's recall was measured, or why it has none. */
function recallBasis(row: PointAggregate, reason: string | null): string {
  if (row.phase === 'baseline') return 'the reference';
  if (row.recall === null) return reason ?? 'not measured (tick “Measure attention recall”)';
  const queries = `${formatCount(row.recallQueries)} ${row.recallQueries === 1 ? 'query' : 'queries'}`;
  return row.recallKind === 'exact' ? `exact, all ${queries}` : `sampled, ${queries}`;
}

export function SweepTable({
  results,
  filter,
}: {
  results: readonly SampleResult[];
  filter: PlotFilter;
}) {
  const rows = useMemo(() => {
    const matching = resultsMatching(results, filter);
    const reasons = new Map<string, string>();
    for (const r of matching) {
      if (r.recallUnavailable && !reasons.has(r.pointId)) {
        reasons.set(r.pointId, r.recallUnavailable);
      }
    }
    const points = aggregateResults(matching, { acrossTasks: true, acrossLengths: true });
    points.sort(
      (a, b) =>
        PHASE_ORDER[a.phase] - PHASE_ORDER[b.phase] ||
        a.method.localeCompare(b.method) ||
        a.sparsity - b.sparsity,
    );
    return points.map((row) => ({ row, reason: reasons.get(row.pointId) ?? null }));
  }, [results, filter]);

  return (
    <div className="table-wrap">
      <table className="results sweep-table" data-testid="sweep-table">
        <caption>
          Per point, on the samples the plots show: sparsity as the kernels counted it in the
          method&rsquo;s phase, recall as the share of dense attention mass on the kept keys.
        </caption>
        <thead>
          <tr>
            <th scope="col">Method</th>
            <th scope="col" className="num">
              Target
            </th>
            <th scope="col" className="num">
              Measured sparsity
            </th>
            <th scope="col" className="num">
              Score (n)
            </th>
            <th scope="col" className="num">
              Recall
            </th>
            <th scope="col">Recall measured on</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(({ row, reason }) => {
            const phase = row.phase === 'baseline' ? null : row.phase;
            return (
              <tr key={row.pointId} data-point={row.pointId}>
                <th scope="row">
                  {phase ? `${getMethod(row.method).label} (${phase})` : 'Dense (reference)'}
                </th>
                <td className="num">{phase ? formatPercent(row.sparsity) : '—'}</td>
                <td className="num">
                  {phase && row.n > 0 ? formatPercent(row.measuredSparsity[phase].mean) : '—'}
                </td>
                <td className="num">
                  {row.n > 0 ? `${withError(row.score.mean, row.score.se, 3)} (${row.n})` : '—'}
                  {row.errors > 0 && `, ${row.errors} failed`}
                </td>
                <td className="num">{recallText(row.recall)}</td>
                <td className="recall-basis">{recallBasis(row, reason)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
