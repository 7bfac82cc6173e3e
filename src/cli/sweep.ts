/**
 * npm run sweep -- --model <folder> --tasks ruler_niah,ruler_vt --length 4096,8192 --samples 20
 *   --prefill vertical_slash,block_sparse,flexprefill,blasst --decode quest,snapkv,ada_snapkv,blasst
 *   --sparsity 0,0.5,0.7,0.8,0.9,0.95 --out results.json [--csv results.csv]
 *   [--max-new-tokens 64] [--seed 0] [--chat auto|on|off] [--weights f32|f16] [--kv f32|f16]
 *   [--recall-layer N]
 *
 * The browser's evaluation engine (src/engine/sweep.ts over src/engine/modelBackend.ts) in Node
 * with Dawn. Every result is saved the moment it exists (a journal next to --out); running the
 * same command again resumes where it stopped. Ctrl-C stops after the current token and writes
 * --out; a second Ctrl-C quits at once (the journal keeps what finished).
 */
import { basename, resolve } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ModelBackend, tokenizerCodec } from '../engine/modelBackend';
import { DEFAULT_RECALL_QUERIES } from '../engine/recall';
import { compareLengths, tallyVerdicts } from '../engine/lengthTolerance';
import { JsonFileResultStore } from '../engine/store/jsonFile';
import { aggregateResults, runSweep, sweepFingerprint, validateSweepConfig } from '../engine/sweep';
import { resultsToCsv } from '../engine/sweepCsv';
import type {
  PointAggregate,
  SampleResult,
  SweepConfig,
  SweepProgress,
} from '../engine/sweepTypes';
import { acquireNodeGpuContext } from '../gpu/node';
import { loadModelFolder } from '../model/load';
import { MAX_KEPT_MASK_TOKENS } from '../model/runtime/attentionMap';
import { TextTokenizer } from '../model/tokenizer';

const usage = `usage: npm run sweep -- --model <folder> --tasks ruler_niah,ruler_vt --length 4096,8192
  --samples 20 --prefill vertical_slash,block_sparse --decode quest,snapkv
  --sparsity 0,0.5,0.7,0.9 --out results.json [--csv results.csv] [--max-new-tokens 64]
  [--seed 0] [--chat auto|on|off] [--weights f32|f16] [--kv f32|f16]
  [--recall-layer N]   (attention recall of every sparse method at layer N: prefill over every
                        query up to ${MAX_KEPT_MASK_TOKENS} tokens, on ${DEFAULT_RECALL_QUERIES} sampled queries
                        beyond; decode on its first query)`;

class UsageError extends Error {}

function list(value: string | undefined, name: string): string[] {
  if (value === undefined || value.trim() === '') return [];
  const items = value.split(',').map((item) => item.trim());
  if (items.some((item) => item === '')) {
    throw new UsageError(`--${name}: empty item in '${value}' (a comma-separated list)`);
  }
  return items;
}

function numbers(value: string | undefined, name: string): number[] {
  return list(value, name).map((item) => {
    const parsed = Number(item);
    if (!Number.isFinite(parsed)) throw new UsageError(`--${name}: '${item}' is not a number`);
    return parsed;
  });
}

function integer(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed))
    throw new UsageError(`--${name} must be an integer, got '${value}'`);
  return parsed;
}

function dtype(value: string | undefined, name: string): 'f32' | 'f16' {
  if (value === undefined || value === 'f32' || value === 'f16') return value ?? 'f32';
  throw new UsageError(`--${name} must be f32 or f16, got '${value}'`);
}

function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A one-line progress bar on stderr (redrawn in place on a terminal, a line per point if not). */
class ProgressBar {
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = performance.now();
  private ranThisSession = 0;
  private label = '';

  point(label: string): void {
    this.label = label;
    if (!this.tty) process.stderr.write(`${label}\n`);
  }

  update(progress: SweepProgress, ranOne: boolean): void {
    if (ranOne) this.ranThisSession++;
    if (!this.tty) return;
    const width = 30;
    const fraction = progress.total > 0 ? progress.done / progress.total : 1;
    const filled = Math.round(fraction * width);
    const perRun = (performance.now() - this.started) / Math.max(this.ranThisSession, 1);
    const eta = this.ranThisSession > 0 ? perRun * (progress.total - progress.done) : NaN;
    const failed = progress.errors > 0 ? `, ${progress.errors} failed` : '';
    const line =
      `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${progress.done}/${progress.total}` +
      ` (${progress.resumed} resumed${failed}) ETA ${duration(eta)}  ${this.label}`;
    const columns = process.stderr.columns ?? 120;
    process.stderr.write(`\r${line.slice(0, columns - 1).padEnd(columns - 1)}`);
  }

  end(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

const format = (value: number, digits = 3) =>
  Number.isFinite(value) ? value.toFixed(digits) : 'n/a';

/** The aggregates over tasks and lengths, as a table on stdout. */
function printSummary(rows: readonly PointAggregate[]): void {
  const header = [
    'point',
    'n',
    'failed',
    'score +- SE',
    'rel. error',
    'KL',
    'top-1',
    'measured s',
    'recall',
  ];
  const body = rows.map((r) => {
    const measured = r.phase === 'decode' ? r.measuredSparsity.decode : r.measuredSparsity.prefill;
    return [
      r.pointId,
      String(r.n),
      String(r.errors),
      `${format(r.score.mean)} +- ${format(r.score.se)}`,
      r.vsDense ? format(r.vsDense.relativeError) : '',
      r.vsDense ? format(r.vsDense.kl.mean, 4) : '',
      r.vsDense ? format(r.vsDense.top1Agreement.mean, 2) : '',
      format(measured.mean),
      r.recall && r.recallKind
        ? `${format(r.recall.mean)} ${r.recallKind} ${Math.round(r.recallQueries / r.recall.n)}q`
        : '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  for (const row of [header, ...body]) {
    console.log(row.map((cell, i) => cell.padEnd(widths[i])).join('  '));
  }
  if (rows.some((r) => r.recall)) {
    console.log(
      'recall: dense softmax mass kept at the recall layer; exact = every query of the prompt ' +
        '(decode: its one query), sampled = seeded sample of queries; Nq = queries per sample',
    );
  }
}

/** Why some points have no recall, once per point and reason. */
function printRecallGaps(results: readonly SampleResult[]): void {
  const gaps = new Set<string>();
  for (const r of results) {
    if (r.status === 'ok' && r.recallUnavailable) gaps.add(`${r.pointId}: ${r.recallUnavailable}`);
  }
  for (const gap of gaps) console.log(`no recall for ${gap}`);
}

/** With two lengths or more: the study's first finding on these results (lengthTolerance.ts). */
function printLengthComparison(results: readonly SampleResult[]): void {
  const rows = compareLengths(aggregateResults(results));
  if (rows.length === 0) return;
  const { all, denseAlike } = tallyVerdicts(rows);
  const count = (t: typeof all) => `${t.longer} longer, ${t.shorter} shorter, ${t.tie} ties`;
  console.log(
    `lengths (point against dense, shorter vs longest, beyond one SE): ${count(all)}; ` +
      `where dense scores alike at both: ${count(denseAlike)}`,
  );
  for (const r of rows.filter((row) => row.verdict !== 'tie')) {
    console.log(
      `  ${r.verdict} loses less: ${r.task} ${r.phase}:${r.method}@${r.sparsity} ` +
        `${r.shorter} ${r.shorterDelta.toFixed(3)} vs ${r.longer} ${r.longerDelta.toFixed(3)} ` +
        `(difference ${r.difference.toFixed(3)} +- ${r.se.toFixed(3)}${r.denseDiffers ? ', dense differs' : ''})`,
    );
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      tasks: { type: 'string' },
      length: { type: 'string' },
      samples: { type: 'string' },
      prefill: { type: 'string' },
      decode: { type: 'string' },
      sparsity: { type: 'string' },
      out: { type: 'string' },
      csv: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      seed: { type: 'string' },
      chat: { type: 'string' },
      weights: { type: 'string' },
      kv: { type: 'string' },
      'recall-layer': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (!values.model) throw new UsageError('--model <folder> is required');
  if (!values.out)
    throw new UsageError('--out <results.json> is required (it is also the resume file)');
  const config: SweepConfig = {
    tasks: list(values.tasks, 'tasks'),
    lengths: numbers(values.length, 'length'),
    samples: integer(values.samples, 'samples', 20),
    seed: integer(values.seed, 'seed', 0),
    prefillMethods: list(values.prefill, 'prefill'),
    decodeMethods: list(values.decode, 'decode'),
    sparsities: numbers(values.sparsity, 'sparsity'),
    maxNewTokens: integer(values['max-new-tokens'], 'max-new-tokens', 64),
  };
  if (values['recall-layer'] !== undefined) {
    config.recallLayer = integer(values['recall-layer'], 'recall-layer', 0);
  }
  if (config.tasks.length === 0)
    throw new UsageError('--tasks is required, e.g. --tasks ruler_niah');
  if (config.lengths.length === 0) throw new UsageError('--length is required, e.g. --length 4096');
  const chatMode = values.chat ?? 'auto';
  if (!['auto', 'on', 'off'].includes(chatMode)) {
    throw new UsageError(`--chat must be auto, on or off, got '${chatMode}'`);
  }
  const weightDtype = dtype(values.weights, 'weights');
  const kvDtype = dtype(values.kv, 'kv');

  const folder = await loadModelFolder(values.model);
  if (!folder.tokenizerJson) {
    throw new Error(
      `${values.model} has no tokenizer.json; the tasks need the model's tokenizer to build prompts`,
    );
  }
  const tokenizer = new TextTokenizer(folder.tokenizerJson, folder.tokenizerConfig ?? {});
  const chat = chatMode === 'on' || (chatMode === 'auto' && tokenizer.chatTemplate !== null);
  const ctx = await acquireNodeGpuContext();
  const backend = new ModelBackend(ctx, folder.model, tokenizerCodec(tokenizer, { chat }), {
    name: `${basename(resolve(values.model))} (weights ${weightDtype}, kv ${kvDtype}, chat ${chat ? 'on' : 'off'})`,
    weightDtype,
    kvDtype,
  });
  validateSweepConfig(config, backend.model);
  const store = new JsonFileResultStore(values.out, sweepFingerprint(config, backend.model));

  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping after the current token (Ctrl-C again to quit now)\n');
    controller.abort();
  });

  console.error(
    `${backend.model.name} on ${ctx.adapter.description || ctx.adapter.vendor || 'WebGPU'}`,
  );
  const bar = new ProgressBar();
  let complete = false;
  let cancelled = false;
  const save = async () => {
    await store.write({
      model: backend.model,
      config,
      complete,
      aggregates: aggregateResults(store.all()),
    });
  };
  let lastSave = performance.now();
  for await (const event of runSweep(config, backend, store, { signal: controller.signal })) {
    if (event.type === 'plan') bar.update(event.progress, false);
    if (event.type === 'point') bar.point(`${event.point.id} at length ${event.length}`);
    if (event.type === 'reference') {
      bar.point(`dense again on ${event.sampleId}, for its next-token logits only`);
    }
    if (event.type === 'result') {
      bar.update(event.progress, true);
      if (event.result.status === 'error') {
        bar.end();
        console.error(`${event.result.key} failed: ${event.result.error}`);
      }
      // The journal already has the result; rewrite --out now and then so it can be read live.
      if (performance.now() - lastSave > 60_000) {
        await save();
        lastSave = performance.now();
      }
    }
    if (event.type === 'done') {
      cancelled = event.cancelled;
      complete = !event.cancelled && event.progress.done === event.progress.total;
    }
  }
  bar.end();
  await save();
  console.error(`wrote ${values.out}`);
  if (values.csv) {
    await writeFile(values.csv, resultsToCsv(store.all()));
    console.error(`wrote ${values.csv}`);
  }
  printSummary(aggregateResults(store.all(), { acrossTasks: true, acrossLengths: true }));
  printRecallGaps(store.all());
  printLengthComparison(store.all());
  if (cancelled) {
    console.error('cancelled: run the same command again to resume');
    return 130;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n${usage}`);
      process.exit(2);
    }
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
