/**
 * npx tsx tools/sweep_report.ts <results.json>[,<more.json>...] <out prefix>
 *
 * Turns sweep results files (npm run sweep -- --out results.json; several files of one model, e.g.
 * one per length, are merged) into what docs/ shows: a Markdown table (<prefix>.md) of every
 * point's mean score with its standard error and sample count, per task and length, then the
 * length comparison of src/engine/lengthTolerance.ts (the study's first finding) where a point
 * was swept at two lengths or more, and a plot (<prefix>.svg): score against the sparsity the kernels
 * measured (of the phase the method makes sparse; adaptive methods reach other sparsities than the
 * target, so the target would mislead), one panel
 * per task and length, one line per method, the dense score as a dashed line, error bars of one
 * standard error. Numbers come from the file's aggregates, as the engine computed them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { compareLengths, phaseSparsity, tallyVerdicts } from '../src/engine/lengthTolerance';
import type { SweepResultsFile } from '../src/engine/store/jsonFile';
import type { PointAggregate } from '../src/engine/sweepTypes';

const COLOURS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#8c564b',
  '#e377c2',
  '#17becf',
];

function fmt(value: number | null | undefined, digits = 3): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? 'n/a'
    : value.toFixed(digits);
}

function panels(aggregates: readonly PointAggregate[]): Map<string, PointAggregate[]> {
  const byPanel = new Map<string, PointAggregate[]>();
  for (const a of aggregates) {
    if (a.task === null || a.length === null) continue;
    const key = `${a.task} @ ${a.length}`;
    byPanel.set(key, [...(byPanel.get(key) ?? []), a]);
  }
  return byPanel;
}

function lengthTable(aggregates: readonly PointAggregate[]): string[] {
  const rows = compareLengths(aggregates);
  if (rows.length === 0) return [];
  const { all, prefill, decode, denseAlike } = tallyVerdicts(rows);
  const count = (t: typeof all) => `${t.longer} longer, ${t.shorter} shorter, ${t.tie} ties`;
  const lines = [
    '',
    '## By length (finding 1: longer sequences tolerate higher sparsity)',
    '',
    'Per point, the mean (method - dense) score at a shorter length against the longest one; ' +
      '"difference" is longer minus shorter (positive: the longer length loses less), ± the SE of ' +
      'the difference of two independent means. A comparison goes to a length only beyond one SE. ' +
      `Tally: ${count(all)} (prefill: ${count(prefill)}; decode: ${count(decode)}). ` +
      'Where dense scores differently at the two lengths (beyond one SE; "dense" marked *), a ' +
      `method has more or less to lose at one of them; without those rows: ${count(denseAlike)}.`,
    '',
    '| task | phase | method | target s | lengths | dense | vs dense (shorter) | vs dense (longer) | difference | measured s | verdict |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.task} | ${r.phase} | ${r.method} | ${r.sparsity} | ${r.shorter} / ${r.longer} | ` +
        `${fmt(r.shorterDense)} / ${fmt(r.longerDense)}${r.denseDiffers ? ' *' : ''} | ` +
        `${fmt(r.shorterDelta)} | ${fmt(r.longerDelta)} | ${fmt(r.difference)} ± ${fmt(r.se)} | ` +
        `${fmt(r.shorterMeasured)} / ${fmt(r.longerMeasured)} | ${r.verdict} |`,
    );
  }
  return lines;
}

function table(file: SweepResultsFile, aggregates: readonly PointAggregate[]): string {
  const lines = [
    `Model: ${file.model.name}. Samples per task and length: ${file.config.samples}. ` +
      `Score: mean ± standard error (n). Sparsity: measured by the kernels (prefill / decode).`,
    '',
    '| task | length | phase | method | target s | score | vs dense | measured s (prefill / decode) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const sorted = [...aggregates]
    .filter((a) => a.task !== null && a.length !== null)
    .sort(
      (a, b) =>
        (a.task ?? '').localeCompare(b.task ?? '') ||
        (a.length ?? 0) - (b.length ?? 0) ||
        a.phase.localeCompare(b.phase) ||
        a.method.localeCompare(b.method) ||
        a.sparsity - b.sparsity,
    );
  for (const a of sorted) {
    const delta = a.vsDense ? `${fmt(-a.vsDense.absoluteError)}` : '';
    lines.push(
      `| ${a.task} | ${a.length} | ${a.phase} | ${a.method} | ${a.sparsity} | ` +
        `${fmt(a.score.mean)} ± ${fmt(a.score.se)} (${a.n}) | ${delta} | ` +
        `${fmt(a.measuredSparsity.prefill.mean)} / ${fmt(a.measuredSparsity.decode.mean)} |`,
    );
  }
  return [...lines, ...lengthTable(aggregates)].join('\n') + '\n';
}

function plot(aggregates: readonly PointAggregate[]): string {
  const byPanel = [...panels(aggregates).entries()].sort(([a], [b]) => a.localeCompare(b));
  const columns = Math.min(3, byPanel.length);
  const rows = Math.ceil(byPanel.length / columns);
  const pw = 320;
  const ph = 220;
  const margin = { left: 44, right: 12, top: 28, bottom: 34 };
  // BLASST runs in both phases: a line per phase and method keeps the two apart.
  const series = (a: PointAggregate) => `${a.phase}:${a.method}`;
  const methods = [...new Set(aggregates.filter((a) => a.phase !== 'baseline').map(series))].sort();
  const legendColumn = 150;
  const width = columns * pw;
  const legendPerRow = Math.max(1, Math.floor((width - 10) / legendColumn));
  const legendHeight = 24 * Math.ceil(methods.length / legendPerRow);
  const height = rows * ph + legendHeight;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  methods.forEach((m, i) => {
    const x = 10 + (i % legendPerRow) * legendColumn;
    const y = 12 + Math.floor(i / legendPerRow) * 24;
    out.push(
      `<line x1="${x}" y1="${y}" x2="${x + 18}" y2="${y}" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="2"/>`,
      `<text x="${x + 22}" y="${y + 4}">${m}</text>`,
    );
  });
  byPanel.forEach(([title, items], p) => {
    const ox = (p % columns) * pw;
    const oy = legendHeight + Math.floor(p / columns) * ph;
    const iw = pw - margin.left - margin.right;
    const ih = ph - margin.top - margin.bottom;
    const sx = (s: number) => ox + margin.left + (s / 1) * iw;
    const sy = (v: number) => oy + margin.top + (1 - v) * ih;
    out.push(
      `<text x="${ox + pw / 2}" y="${oy + 16}" text-anchor="middle" font-weight="bold">${title}</text>`,
      `<rect x="${ox + margin.left}" y="${oy + margin.top}" width="${iw}" height="${ih}" fill="none" stroke="#999"/>`,
    );
    for (const t of [0, 0.5, 1]) {
      out.push(
        `<text x="${ox + margin.left - 4}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`,
        `<text x="${sx(t)}" y="${oy + ph - margin.bottom + 14}" text-anchor="middle">${t}</text>`,
      );
    }
    out.push(
      `<text x="${ox + margin.left + iw / 2}" y="${oy + ph - 6}" text-anchor="middle">measured sparsity</text>`,
    );
    const dense = items.find((a) => a.phase === 'baseline');
    if (dense && Number.isFinite(dense.score.mean)) {
      out.push(
        `<line x1="${sx(0)}" y1="${sy(dense.score.mean)}" x2="${sx(1)}" y2="${sy(dense.score.mean)}" stroke="#333" stroke-dasharray="4 3"/>`,
      );
    }
    methods.forEach((m, i) => {
      const colour = COLOURS[i % COLOURS.length];
      const points = items
        .filter((a) => series(a) === m && a.phase !== 'baseline' && Number.isFinite(a.score.mean))
        .sort((a, b) => phaseSparsity(a) - phaseSparsity(b));
      if (points.length === 0) return;
      out.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${points
          .map((a) => `${sx(phaseSparsity(a))},${sy(a.score.mean)}`)
          .join(' ')}"/>`,
      );
      for (const a of points) {
        const se = Number.isFinite(a.score.se) ? a.score.se : 0;
        out.push(
          `<line x1="${sx(phaseSparsity(a))}" y1="${sy(Math.min(1, a.score.mean + se))}" x2="${sx(phaseSparsity(a))}" y2="${sy(Math.max(0, a.score.mean - se))}" stroke="${colour}"/>`,
          `<circle cx="${sx(phaseSparsity(a))}" cy="${sy(a.score.mean)}" r="2.5" fill="${colour}"/>`,
        );
      }
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function main(): void {
  const [inputs, prefix] = process.argv.slice(2);
  if (!inputs || !prefix) {
    console.error(
      'usage: npx tsx tools/sweep_report.ts <results.json>[,<more.json>...] <out prefix>',
    );
    process.exit(2);
  }
  const files = inputs.split(',').map((input) => {
    const file = JSON.parse(readFileSync(input, 'utf8')) as SweepResultsFile;
    if (!Array.isArray(file.aggregates)) {
      throw new Error(`${input}: no aggregates (write it with npm run sweep -- --out)`);
    }
    return { input, file };
  });
  for (const { input, file } of files) {
    if (file.model.name !== files[0].file.model.name) {
      throw new Error(`${input}: results of ${file.model.name}; merge files of one model only`);
    }
  }
  const aggregates = files.flatMap(({ file }) => file.aggregates);
  writeFileSync(`${prefix}.md`, table(files[0].file, aggregates));
  writeFileSync(`${prefix}.svg`, plot(aggregates));
  console.error(`wrote ${prefix}.md and ${prefix}.svg`);
}

main();
