/** Horizontal bars of shares in [0, 1]: per-head budgets and recall, per-layer sparsity and recall. */

import { formatPercent } from './format';

export interface BarRow {
  label: string;
  /** Each series' value in [0, 1], or null where it was not measured. */
  values: (number | null)[];
  selected?: boolean;
}

const SERIES_COLOURS = ['var(--accent)', 'rgb(94, 201, 98)'];

export function AttentionMapBars({
  title,
  series,
  rows,
}: {
  title: string;
  /** Names of the values of each row, in order. */
  series: string[];
  rows: BarRow[];
}) {
  return (
    <figure className="attention-map-bars" style={{ margin: 0, minWidth: 220 }}>
      <figcaption style={{ fontWeight: 600, marginBottom: 4 }}>{title}</figcaption>
      <div
        style={{ display: 'flex', flexWrap: 'wrap', gap: '0 12px', fontSize: '0.85em' }}
        className="muted"
      >
        {series.map((name, s) => (
          <span key={name}>
            <span
              aria-hidden="true"
              style={{
                display: 'inline-block',
                width: 10,
                height: 10,
                marginRight: 4,
                background: SERIES_COLOURS[s % SERIES_COLOURS.length],
              }}
            />
            {name}
          </span>
        ))}
      </div>
      <table style={{ borderCollapse: 'collapse', width: '100%', fontSize: '0.85em' }}>
        <tbody>
          {rows.map((row) => (
            <tr key={row.label} style={{ fontWeight: row.selected ? 700 : undefined }}>
              <th scope="row" style={{ textAlign: 'left', paddingRight: 6, whiteSpace: 'nowrap' }}>
                {row.label}
              </th>
              <td style={{ width: '100%' }}>
                {row.values.map((value, s) => (
                  <div
                    key={series[s]}
                    style={{ display: 'flex', alignItems: 'center', gap: 6, height: 20 }}
                  >
                    <div style={{ flex: 1, background: 'var(--surface-2)', height: 10 }}>
                      {value !== null && (
                        <div
                          style={{
                            width: `${Math.min(1, Math.max(0, value)) * 100}%`,
                            height: '100%',
                            background: SERIES_COLOURS[s % SERIES_COLOURS.length],
                          }}
                        />
                      )}
                    </div>
                    <span style={{ width: 56, textAlign: 'right' }}>
                      {value === null ? '—' : formatPercent(value)}
                    </span>
                  </div>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
