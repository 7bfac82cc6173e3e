/**
 * tools/train/teacher_forced_vt.py, the CPU probe of which character of VT's looked-up names a
 * model gets wrong, on one sample of the app's own VT generator and the shipped model: if its
 * NumPy forward pass drifted from the model's (norms, rotary embedding, GQA), the number lookup,
 * which the shipped model gets right on every card sample, would fail too.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../src/model/tokenizer';
import { answerCompletion } from '../../src/tasks/answer';
import { getTask } from '../../src/tasks/registry';

const model = join(__dirname, '../../public/models/tiny-tasks-4k');
const tokenizer = new TextTokenizer(
  JSON.parse(readFileSync(join(model, 'tokenizer.json'), 'utf8')),
  JSON.parse(readFileSync(join(model, 'tokenizer_config.json'), 'utf8')),
);
const vt = getTask('ruler_vt');
const folder = mkdtempSync(join(tmpdir(), 'teacher-forced-vt-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

interface Report {
  names: { by_number: number; by_name: number };
  wrong: { by_number: number[]; by_name: number[] };
  samples: { seed: number; names: { by_name: number; right: number[] }[] }[];
}

describe('tools/train/teacher_forced_vt.py', () => {
  it('scores every character of each looked-up name, and the shipped model finds the number lookup', () => {
    const seed = 31;
    const sample = vt.generate({
      seed,
      targetTokens: 2560,
      tokenizer: { count: (t) => tokenizer.count(t) },
    });
    const samples = join(folder, 'vt.jsonl');
    const out = join(folder, 'errors.json');
    const line = {
      task: vt.name,
      seed,
      prompt: sample.prompt,
      completion: answerCompletion(vt.goldAnswer(sample)),
    };
    writeFileSync(samples, JSON.stringify(line) + '\n');
    const run = spawnSync(
      'python3',
      [
        join(__dirname, '../../tools/train/teacher_forced_vt.py'),
        '--model',
        model,
        '--samples',
        samples,
        '--out',
        out,
      ],
      { encoding: 'utf8', cwd: join(__dirname, '../../tools/train') },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
    const chain = sample.answer as string[];
    expect(report.names).toEqual({ by_number: 1, by_name: chain.length - 1 });
    expect(report.samples[0].names.map((n) => n.right.length)).toEqual(chain.map(() => 5));
    expect(report.samples[0].names[0]).toEqual({ by_name: 0, right: [1, 1, 1, 1, 1] });
    expect(report.wrong.by_number).toEqual([0, 0, 0, 0, 0]);
    const wrongByName = report.samples[0].names
      .slice(1)
      .reduce((sum, n) => n.right.map((r, j) => sum[j] + 1 - r), [0, 0, 0, 0, 0]);
    expect(report.wrong.by_name).toEqual(wrongByName);
  }, 60_000);
});
