/**
 * The Node ResultStore behind the CLI's --out file. Each result is appended to a journal next to
 * it (`<out>.journal.jsonl`) the moment it exists, so a crash or Ctrl-C loses nothing; `write()`
 * writes the whole results file (atomically: a temporary file, then a rename) and drops the
 * journal. `load()` reads both, so a sweep resumes from whatever the last session left.
 */
import { existsSync } from 'node:fs';
import { appendFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type {
  PointAggregate,
  ResultStore,
  SampleResult,
  SweepConfig,
  SweepModelInfo,
} from '../sweepTypes';

export const RESULTS_FORMAT = 'sparse-attention-sweep';
export const RESULTS_VERSION = 1;

/** The --out file. */
export interface SweepResultsFile {
  format: typeof RESULTS_FORMAT;
  version: typeof RESULTS_VERSION;
  /** sweep.ts sweepFingerprint: results of another fingerprint are never resumed from. */
  fingerprint: string;
  model: SweepModelInfo;
  config: SweepConfig;
  /** Whether every (point, sample) of the config has finished. */
  complete: boolean;
  aggregates: PointAggregate[];
  results: SampleResult[];
}

function parseResultsFile(text: string, path: string): SweepResultsFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `${path}: not valid JSON (${(error as Error).message}); choose another --out file or delete it`,
      { cause: error },
    );
  }
  const file = json as Partial<SweepResultsFile>;
  if (file.format !== RESULTS_FORMAT || !Array.isArray(file.results)) {
    throw new Error(`${path}: not a sweep results file; choose another --out file`);
  }
  if (file.version !== RESULTS_VERSION) {
    throw new Error(
      `${path}: results format version ${file.version}, this build reads ${RESULTS_VERSION}; ` +
        'choose another --out file',
    );
  }
  return file as SweepResultsFile;
}

export class JsonFileResultStore implements ResultStore {
  readonly journalPath: string;
  private readonly results = new Map<string, SampleResult>();

  constructor(
    readonly path: string,
    private readonly fingerprint: string,
  ) {
    this.journalPath = `${path}.journal.jsonl`;
  }

  async load(): Promise<SampleResult[]> {
    this.results.clear();
    if (existsSync(this.path)) {
      const file = parseResultsFile(await readFile(this.path, 'utf8'), this.path);
      if (file.fingerprint !== this.fingerprint) {
        throw new Error(
          `${this.path} holds results of another sweep (${file.fingerprint}; this one is ` +
            `${this.fingerprint}); choose another --out file or delete it to start over`,
        );
      }
      for (const result of file.results) this.results.set(result.key, result);
    }
    if (existsSync(this.journalPath)) {
      const lines = (await readFile(this.journalPath, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        if (line.trim() === '') return;
        let entry: { fingerprint: string; result: SampleResult };
        try {
          entry = JSON.parse(line);
        } catch {
          // An append cut off by a crash leaves an incomplete last line with no newline.
          if (i === lines.length - 1) return;
          throw new Error(`${this.journalPath}: line ${i + 1} is not valid JSON; delete the file`);
        }
        if (entry.fingerprint !== this.fingerprint) {
          throw new Error(
            `${this.journalPath} holds results of another sweep (${entry.fingerprint}); ` +
              'delete it to start over',
          );
        }
        this.results.set(entry.result.key, entry.result);
      });
    }
    return [...this.results.values()];
  }

  async put(result: SampleResult): Promise<void> {
    this.results.set(result.key, result);
    await appendFile(
      this.journalPath,
      `${JSON.stringify({ fingerprint: this.fingerprint, result })}\n`,
    );
  }

  /** Every result held (loaded and put). */
  all(): SampleResult[] {
    return [...this.results.values()];
  }

  /** Writes the results file and removes the journal, whose results it now holds. */
  async write(file: Omit<SweepResultsFile, 'format' | 'version' | 'fingerprint' | 'results'>) {
    const whole: SweepResultsFile = {
      format: RESULTS_FORMAT,
      version: RESULTS_VERSION,
      fingerprint: this.fingerprint,
      ...file,
      results: this.all(),
    };
    const temporary = `${this.path}.tmp`;
    await writeFile(temporary, `${JSON.stringify(whole, null, 1)}\n`);
    await rename(temporary, this.path);
    await rm(this.journalPath, { force: true });
  }
}
