/**
 * Sweep results as files: JSON (configuration and every result) here, CSV from the engine's
 * sweepCsv.ts (the CLI's format), and the download itself (also of plots and maps as PNG).
 */
import type { SampleResult, SweepConfig } from '../engine/sweepTypes';

export { resultsToCsv } from '../engine/sweepCsv';

export function resultsToJson(
  config: SweepConfig,
  model: string | null,
  results: readonly SampleResult[],
): string {
  return JSON.stringify({ model, config, results }, null, 2);
}

/** Offers what a URL (a data: or blob: URL) holds as a file download. */
export function downloadUrl(filename: string, url: string): void {
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
}

/** Offers text as a file download. */
export function downloadText(filename: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  downloadUrl(filename, url);
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
