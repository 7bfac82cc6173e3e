/**
 * npm run tasks -- --tokenizer <model folder> [--tasks ruler_niah,ruler_vt,...] [--lengths 4096]
 *   [--samples 10] [--seed 0] [--shard i/n] [--out samples.jsonl]
 *
 * Writes task samples as JSON lines: the prompt, the gold completion (what a perfect model writes,
 * answer tags included), the gold answer and the prompt's token count under the folder's
 * tokenizer. Sample k of a (task, length) pair uses seed `--seed + k`, so a range of seeds is a
 * data set that can be regenerated exactly; `--shard i/n` writes every n-th sample starting at i,
 * for generating in parallel. The training recipe of the embedded model (tools/train/) reads it.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TextTokenizer } from '../model/tokenizer';
import { answerCompletion } from '../tasks/answer';
import { getTask, TASKS } from '../tasks/registry';

const usage = `usage: npm run tasks -- --tokenizer <model folder> [--tasks ${TASKS.map((t) => t.name).join(',')}]
  [--lengths 4096] [--samples 10] [--seed 0] [--shard i/n] [--out samples.jsonl]`;

class UsageError extends Error {}

async function loadTokenizer(folder: string): Promise<TextTokenizer> {
  const file = join(folder, 'tokenizer.json');
  if (!existsSync(file))
    throw new UsageError(`${file}: not found (--tokenizer names a model folder)`);
  const configFile = join(folder, 'tokenizer_config.json');
  const config = existsSync(configFile) ? JSON.parse(await readFile(configFile, 'utf8')) : {};
  return new TextTokenizer(JSON.parse(await readFile(file, 'utf8')), config);
}

function integers(value: string, name: string): number[] {
  return value.split(',').map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name}: '${part}' is not a count`);
    return n;
  });
}

function shard(value: string | undefined): { index: number; count: number } {
  if (value === undefined) return { index: 0, count: 1 };
  const match = /^(\d+)\/(\d+)$/.exec(value);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index >= count) {
    throw new UsageError(`--shard must be i/n with 0 <= i < n, got '${value}'`);
  }
  return { index, count };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tokenizer: { type: 'string' },
      tasks: { type: 'string' },
      lengths: { type: 'string', default: '4096' },
      samples: { type: 'string', default: '10' },
      seed: { type: 'string', default: '0' },
      shard: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  if (!values.tokenizer) throw new UsageError('--tokenizer <model folder> is required');
  const tasks = values.tasks ? values.tasks.split(',').map((n) => getTask(n.trim())) : TASKS;
  const lengths = integers(values.lengths, 'lengths');
  const [samples] = integers(values.samples, 'samples');
  const [firstSeed] = integers(values.seed, 'seed');
  const part = shard(values.shard);
  const tokenizer = await loadTokenizer(values.tokenizer);
  const counter = { count: (text: string) => tokenizer.count(text) };

  const out: NodeJS.WritableStream = values.out ? createWriteStream(values.out) : process.stdout;
  let written = 0;
  for (const task of tasks) {
    for (const targetTokens of lengths) {
      for (let k = part.index; k < samples; k += part.count) {
        const sample = task.generate({ seed: firstSeed + k, targetTokens, tokenizer: counter });
        const line = JSON.stringify({
          task: task.name,
          seed: sample.seed,
          targetTokens,
          tokenCount: sample.tokenCount,
          prompt: sample.prompt,
          completion: answerCompletion(task.goldAnswer(sample)),
          answer: sample.answer,
        });
        if (!out.write(`${line}\n`))
          await new Promise<void>((done) => out.once('drain', () => done()));
        written++;
      }
    }
  }
  if (out !== process.stdout) await new Promise<void>((done) => out.end(() => done()));
  console.error(`wrote ${written} samples`);
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`error: ${error.message}\n${usage}`);
  else console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
