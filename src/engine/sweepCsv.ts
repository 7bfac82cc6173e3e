/**
 * Per-sample sweep results as CSV (RFC 4180: comma-separated, fields with commas, quotes or line
 * breaks quoted, quotes doubled), one row per (point, sample), for spreadsheets and pandas.
 * Empty cells are values that do not exist (the baseline's errors against itself, no recall).
 */
import type { PhaseMeasurement, SampleResult } from './sweepTypes';

type Cell = string | number | boolean | null | undefined;

const layerSparsities = (m: PhaseMeasurement) => m.layers.map((l) => l.sparsity).join(';');

const COLUMNS: readonly [string, (r: SampleResult) => Cell][] = [
  ['point', (r) => r.pointId],
  ['phase', (r) => r.phase],
  ['method', (r) => r.method],
  ['target_sparsity', (r) => r.sparsity],
  ['task', (r) => r.task],
  ['length', (r) => r.length],
  ['seed', (r) => r.seed],
  ['status', (r) => r.status],
  ['error', (r) => r.error],
  ['score', (r) => (r.status === 'ok' ? r.score : null)],
  ['abs_error_vs_dense', (r) => r.vsDense?.absoluteError],
  ['rel_error_vs_dense', (r) => r.vsDense?.relativeError],
  ['kl_vs_dense', (r) => r.vsDense?.kl],
  ['top1_agrees_with_dense', (r) => r.vsDense?.top1Agree],
  ['next_token_position', (r) => r.vsDense?.position],
  ['prefill_measured_sparsity', (r) => r.measured.prefill.sparsity],
  ['decode_measured_sparsity', (r) => r.measured.decode.sparsity],
  ['prefill_layer_sparsity', (r) => layerSparsities(r.measured.prefill)],
  ['decode_layer_sparsity', (r) => layerSparsities(r.measured.decode)],
  ['recall', (r) => r.recall],
  ['recall_kind', (r) => r.recallKind],
  ['recall_queries', (r) => (r.recall === null ? null : r.recallQueries)],
  ['recall_unavailable', (r) => r.recallUnavailable],
  ['prompt_tokens', (r) => r.promptTokens],
  ['generated_tokens', (r) => r.generatedTokens],
  ['prefill_flops', (r) => r.cost.prefillFlops],
  ['decode_bytes_per_token', (r) => r.cost.decodeBytesPerToken],
  ['prefill_gpu_ms', (r) => r.timings.prefillMs],
  ['decode_gpu_ms', (r) => r.timings.decodeMs],
  ['decode_tokens', (r) => r.timings.decodeTokens],
  ['timing_source', (r) => r.timings.source],
  ['wall_ms', (r) => r.wallMs],
  ['prefill_params', (r) => JSON.stringify(r.attention.prefill)],
  ['decode_params', (r) => JSON.stringify(r.attention.decode)],
  ['output', (r) => r.output],
];

export function csvCell(value: Cell): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'number' && !Number.isFinite(value) ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The header and one row per result, lines ending in \r\n as RFC 4180 says. */
export function resultsToCsv(results: readonly SampleResult[]): string {
  const lines = [COLUMNS.map(([name]) => name).join(',')];
  for (const r of results) lines.push(COLUMNS.map(([, get]) => csvCell(get(r))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
