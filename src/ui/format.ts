/** Number formatting shared by the panels. */
const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = Number.isInteger(value) ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** A share in [0, 1] as a percentage; a missing one (NaN, infinite) as a dash. */
export function formatPercent(value: number, digits = 1): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(digits)}%` : '—';
}

/** Errors and tolerances in scientific notation; NaN (no measurement) as a dash. */
export function formatError(value: number, digits = 2): string {
  if (Number.isNaN(value)) return '—';
  if (value === 0) return '0';
  return value.toExponential(digits).replace('e+', 'e');
}

/** Milliseconds: whole from 100, one decimal from 1, two below. */
export function formatMs(value: number): string {
  return `${value.toFixed(value >= 100 ? 0 : value >= 1 ? 1 : 2)} ms`;
}

/** What a run's planning cost, per phase and where it ran; null when nothing was planned ahead. */
export function formatPlanning(
  measured: Record<'prefill' | 'decode', { plannerMs?: number; plannerGpuMs?: number }>,
): string | null {
  const parts: string[] = [];
  for (const phase of ['prefill', 'decode'] as const) {
    const { plannerMs = 0, plannerGpuMs = 0 } = measured[phase];
    if (plannerGpuMs > 0) parts.push(`${phase} ${formatMs(plannerGpuMs)} on the GPU`);
    if (plannerMs > 0) parts.push(`${phase} ${formatMs(plannerMs)} on the CPU`);
  }
  return parts.length > 0 ? parts.join(' · ') : null;
}
