/**
 * The study's first finding, "longer sequences tolerate higher sparsity", on the sweep's own
 * results: where a point was swept at two lengths or more, its loss against dense at each shorter
 * length next to its loss at the longest, with a verdict only beyond one standard error, and a
 * mark where dense itself scores differently at the two lengths (then a method has more, or less,
 * to lose at one of them).
 */
import { useMemo } from 'react';
import { tallyVerdicts, type LengthVerdict } from '../engine/lengthTolerance';
import type { SampleResult } from '../engine/sweepTypes';
import { getMethod } from '../methods/registry';
import { formatPercent } from './format';
import { lengthComparisons } from './sweepPlotData';

const fixed = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '—');
const signed = (x: number) => (Number.isFinite(x) && x > 0 ? `+${fixed(x)}` : fixed(x));

export function SweepLengths({
  results,
  task,
}: {
  results: readonly SampleResult[];
  task: string | null;
}) {
  const rows = useMemo(() => lengthComparisons(results, task), [results, task]);
  if (rows.length === 0) return null;
  const tally = tallyVerdicts(rows);
  const count = (t: Record<LengthVerdict, number>) =>
    `${t.longer} for the longer length, ${t.shorter} for the shorter, ${t.tie} within one SE`;
  return (
    <div className="table-wrap" data-testid="sweep-length-comparison">
      <table className="results sweep-table">
        <caption>
          Longer against shorter sequences (the study&rsquo;s first finding): {count(tally.all)}.
          Without the rows marked *, where dense itself scores differently at the two lengths:{' '}
          {count(tally.denseAlike)}.
        </caption>
        <thead>
          <tr>
            <th scope="col">Method, target</th>
            <th scope="col">Task</th>
            <th scope="col" className="num">
              Lengths
            </th>
            <th scope="col" className="num">
              Dense
            </th>
            <th scope="col" className="num">
              Against dense
            </th>
            <th scope="col" className="num">
              Difference ± SE
            </th>
            <th scope="col">Loses less</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr
              key={`${r.task}|${r.phase}|${r.method}|${r.sparsity}|${r.shorter}`}
              data-verdict={r.verdict}
            >
              <th scope="row">
                {`${getMethod(r.method).label} (${r.phase}), ${formatPercent(r.sparsity)}`}
              </th>
              <td>{r.task}</td>
              <td className="num">{`${r.shorter} / ${r.longer}`}</td>
              <td className="num">
                {`${fixed(r.shorterDense)} / ${fixed(r.longerDense)}`}
                {r.denseDiffers && ' *'}
              </td>
              <td className="num">{`${signed(r.shorterDelta)} / ${signed(r.longerDelta)}`}</td>
              <td className="num">{`${signed(r.difference)} ± ${fixed(r.se)}`}</td>
              <td>{r.verdict}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
