/**
 * Sweep results as files: JSON (configuration and every result) here, CSV from the engine's
 * sweepCsv.ts (the CLI's format), and the download itself.
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

/** Offers text as a file download. */
export function downloadText(filename: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
