/**
 * The training recipe's VT answers and attention targets (tools/train/vt_answers.py), checked on
 * samples of the app's own VT generator: if the task's wording or the tokenizer's layout moves,
 * the supervised heads of train.py --lookup-weight would be pointed at the wrong characters, or at
 * none, without any error on the GPU machine.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../src/model/tokenizer';
import { answerCompletion } from '../../src/tasks/answer';
import { getTask } from '../../src/tasks/registry';

type Span = [query: number, start: number, end: number];
interface Traced {
  completion: string;
  targets: {
    carry: Span[];
    lookup: Span[];
    relookup: Span[];
    copy: Span[];
    by_name: { lookup: number[]; relookup: number[]; copy: number[] };
  };
}

const model = join(__dirname, '../../public/models/tiny-tasks-4k');
const tokenizer = new TextTokenizer(
  JSON.parse(readFileSync(join(model, 'tokenizer.json'), 'utf8')),
  JSON.parse(readFileSync(join(model, 'tokenizer_config.json'), 'utf8')),
);
const vt = getTask('ruler_vt');
const samples = [11, 12].map((seed) =>
  vt.generate({ seed, targetTokens: 2560, tokenizer: { count: (t) => tokenizer.count(t) } }),
);
const folder = mkdtempSync(join(tmpdir(), 'vt-answers-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** The copy head's targets cover each name's first `copyChars` characters (train.py --copy-chars). */
function traced(copyChars: number): Traced[] {
  const file = join(folder, 'samples.jsonl');
  const lines = samples.map((s) =>
    JSON.stringify({
      task: vt.name,
      prompt: s.prompt,
      completion: answerCompletion(vt.goldAnswer(s)),
    }),
  );
  writeFileSync(file, lines.join('\n') + '\n');
  const run = spawnSync(
    'python3',
    [join(__dirname, '../../tools/train/vt_answers.py'), file, String(copyChars)],
    { encoding: 'utf8' },
  );
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return run.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Traced);
}

describe('tools/train/vt_answers.py on the app VT samples', () => {
  const nameLength = 5;
  const results = traced(nameLength);

  it('agrees with the character tokenizer: token i is character i - 1 after BOS', () => {
    const ids = tokenizer.encode(samples[0].prompt);
    expect(ids.length).toBe(samples[0].prompt.length + 1);
  });

  it('writes the traced value first, then each later name twice, and the VT scorer reads the names', () => {
    samples.forEach((sample, i) => {
      const chain = sample.answer as string[];
      const value = (sample.meta as { value: number }).value;
      const pairs = chain.slice(0, -1).flatMap((name) => [name, name]);
      expect(results[i].completion).toBe(
        answerCompletion([String(value), ...pairs, chain[chain.length - 1]].join(' ')),
      );
      expect(vt.score(sample, results[i].completion)).toBe(1);
    });
  });

  it('points each supervised head at the characters its part of the lookup needs', () => {
    samples.forEach((sample, i) => {
      // Token t of the row is character t - 1 of the prompt followed by the completion.
      const text = sample.prompt + results[i].completion;
      const at = (t: number) => text[t - 1];
      const slice = (a: number, b: number) => text.slice(a - 1, b - 1);
      const chain = sample.answer as string[];
      const value = (sample.meta as { value: number }).value;
      const { carry, lookup, relookup, copy, by_name: byName } = results[i].targets;
      const statements = [...sample.prompt.matchAll(/VAR ([A-Z]{5}) = (VAR [A-Z]{5}|\d+)\./g)];
      expect(statements).toHaveLength(40);

      // carry: both summary tokens of every statement, onto its assigned name's first character.
      expect(carry).toHaveLength(2 * statements.length);
      statements.forEach((m, s) => {
        const end = m.index + m[0].length + 1;
        expect(carry[2 * s]).toEqual([end - 2, m.index + 5, m.index + 6]);
        expect(carry[2 * s + 1]).toEqual([end - 1, m.index + 5, m.index + 6]);
        expect(at(m.index + 5)).toBe(m[1][0]);
        expect(at(end - 1)).toBe('.');
      });

      // lookup: one per name of the chain, from the character before its first writing; relookup:
      // the same statement from that writing's first character; copy: from the character before
      // each of the name's characters, onto that character in the statement.
      expect(byName.lookup).toEqual([0, 1, 1, 1, 1]);
      expect(byName.relookup).toEqual(byName.lookup);
      expect(byName.copy).toEqual(byName.lookup.flatMap((b) => Array<number>(nameLength).fill(b)));
      expect(copy).toHaveLength(nameLength * chain.length);
      chain.forEach((name, k) => {
        const [query, start, end] = lookup[k];
        expect(relookup[k]).toEqual([query + 1, start, end]);
        expect(at(query + 1)).toBe(name[0]);
        expect(slice(query + 1, query + 6)).toBe(name);
        expect(query).toBeGreaterThan(sample.prompt.length);
        expect([' ', '\n']).toContain(at(query));
        const source = k === 0 ? String(value) : `VAR ${chain[k - 1]}`;
        const statement = `VAR ${name} = ${source}.`;
        const begins = sample.prompt.indexOf(statement) + 1;
        expect(begins).toBeGreaterThan(0);
        expect([start, end]).toEqual([begins + statement.length - 2, begins + statement.length]);
        for (let j = 0; j < nameLength; j++) {
          const [copyQuery, from, to] = copy[nameLength * k + j];
          expect(copyQuery).toBe(query + j);
          expect([from, to]).toEqual([begins + 4 + j, begins + 5 + j]);
          expect(at(from)).toBe(name[j]);
          expect(at(copyQuery + 1)).toBe(name[j]);
        }
      });
    });
  });
});
