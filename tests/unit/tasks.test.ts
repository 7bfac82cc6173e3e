import { describe, expect, it } from 'vitest';
import {
  answerCompletion,
  extractAnswer,
  iou,
  normalizePhrase,
  numberedLines as numbered,
} from '../../src/tasks/answer';
import { CWE_WORDS } from '../../src/tasks/data/words';
import { largestFitting, largestFittingUnbounded } from '../../src/tasks/fill';
import { Rng, rngFor } from '../../src/tasks/random';
import { getTask, TASKS } from '../../src/tasks/registry';
import { Story } from '../../src/tasks/story';
import type { TaskSample, TokenCounter } from '../../src/tasks/types';

const whitespace: TokenCounter = { count: (t) => t.split(/\s+/).filter(Boolean).length };
const chars: TokenCounter = { count: (t) => Math.ceil(t.length / 4) };
const TOKENIZERS = { whitespace, chars };
const TARGETS = [1024, 2048, 4096];

const cache = new Map<string, TaskSample>();
function sample(
  task: string,
  seed = 7,
  targetTokens = 2048,
  tokenizer: keyof typeof TOKENIZERS = 'whitespace',
): TaskSample {
  const key = `${task}/${seed}/${targetTokens}/${tokenizer}`;
  let s = cache.get(key);
  if (!s) {
    s = getTask(task).generate({ seed, targetTokens, tokenizer: TOKENIZERS[tokenizer] });
    cache.set(key, s);
  }
  return s;
}

const wrap = (answer: string) =>
  `<explanation>\nI read the context.\n</explanation>\n<answer>\n${answer}\n</answer>`;
const list = (s: TaskSample) => s.answer as string[];

/** The text of chapter `id` in a story context. */
function chapterText(context: string, id: number): string {
  const start = context.indexOf(`Chapter ${id}:\n`);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = context.indexOf(`\n\nChapter ${id + 1}:\n`, start);
  return context.slice(start, end < 0 ? context.length : end);
}

describe('task registry', () => {
  it('lists the six tasks with the characterisation of METHODS.md', () => {
    expect(TASKS.map((t) => t.name)).toEqual([
      'ruler_niah',
      'ruler_vt',
      'ruler_cwe',
      'story_retrieval',
      'story_multihop',
      'story_filtering',
    ]);
    const c = Object.fromEntries(TASKS.map((t) => [t.name, t.characterisation]));
    expect(c.ruler_niah).toEqual({ dispersion: 'low', scope: 'low' });
    expect(c.story_retrieval).toEqual({ dispersion: 'low', scope: 'low' });
    expect(c.ruler_vt.dispersion).toBe('high');
    expect(c.story_multihop.dispersion).toBe('high');
    expect(c.ruler_cwe.scope).toBe('high');
    expect(c.story_filtering.scope).toBe('high');
    expect(() => getTask('nope')).toThrow(/unknown task/);
  });
});

describe.each(TASKS.map((t) => t.name))('%s', (name) => {
  const task = getTask(name);

  it.each(
    TARGETS.flatMap((target) =>
      (Object.keys(TOKENIZERS) as (keyof typeof TOKENIZERS)[]).map((tok) => [target, tok] as const),
    ),
  )('fills %i tokens to 90-100%% (%s tokenizer)', (target, tok) => {
    const s = sample(name, 11, target, tok);
    expect(s.tokenCount).toBe(TOKENIZERS[tok].count(s.prompt));
    expect(s.tokenCount).toBeLessThanOrEqual(target);
    expect(s.tokenCount).toBeGreaterThanOrEqual(0.9 * target);
    expect(s).toMatchObject({ task: name, seed: 11, targetTokens: target });
  });

  it('is deterministic for a seed and varies across seeds', () => {
    const again = task.generate({ seed: 7, targetTokens: 2048, tokenizer: whitespace });
    expect(again).toEqual(sample(name));
    const other = sample(name, 8);
    expect(other.prompt).not.toBe(sample(name).prompt);
    expect(other.answer).not.toEqual(sample(name).answer);
  });

  it('states the question before and after the context and asks for <answer> tags', () => {
    const s = sample(name);
    const at = s.prompt.indexOf(`<context>\n${s.context}\n</context>`);
    expect(at).toBeGreaterThan(0);
    const first = s.prompt.indexOf(s.question);
    const last = s.prompt.lastIndexOf(s.question);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(at);
    expect(last).toBeGreaterThan(at + s.context.length);
    expect(s.prompt.slice(last)).toContain('<answer>');
    expect(s.chatMessages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(s.chatMessages.map((m) => m.content).join('\n\n')).toBe(s.prompt);
  });

  it('scores the true answer 1 and outputs without an answer 0', () => {
    for (const seed of [1, 2, 3]) {
      const s = sample(name, seed);
      expect(task.score(s, wrap(task.goldAnswer(s)))).toBe(1);
      expect(task.score(s, task.goldAnswer(s))).toBe(0);
      expect(task.score(s, wrap(''))).toBe(0);
      expect(task.score(s, answerCompletion(task.goldAnswer(s)))).toBe(1);
    }
  });

  it('scores the last answer tag, whatever the case of the tag', () => {
    const s = sample(name);
    const good = task.goldAnswer(s);
    expect(task.score(s, `<answer>nothing</answer> then <ANSWER>${good}</Answer>`)).toBe(1);
    expect(task.score(s, `<answer>${good}</answer> no, <answer>nothing</answer>`)).toBe(0);
    expect(task.score(s, `<answer>\n${good}`)).toBe(1);
  });

  it('refuses a target too short for the task', () => {
    expect(() => task.generate({ seed: 1, targetTokens: 100, tokenizer: whitespace })).toThrow(
      RangeError,
    );
  });
});

describe('RULER NIAH', () => {
  const task = getTask('ruler_niah');
  const kv = /^[a-z0-9]{8}(-[a-z0-9]{8}){3}$/;

  it('hides four needles among distinct distractor pairs', () => {
    const s = sample('ruler_niah', 5, 4096);
    const keys = s.meta?.keys as string[];
    expect(keys).toHaveLength(4);
    expect(list(s)).toHaveLength(4);
    keys.forEach((k, i) => {
      expect(k).toMatch(kv);
      expect(list(s)[i]).toMatch(kv);
      expect(s.context).toContain(`The value for key ${k} is: ${list(s)[i]}.`);
      expect(s.question).toContain(k);
    });
    const pairs = [...s.context.matchAll(/The value for key (\S+) is: (\S+)\./g)];
    expect(pairs.length).toBe(4 + (s.meta?.distractors as number));
    expect(pairs.length).toBeGreaterThan(50);
    expect(new Set(pairs.map((p) => p[1])).size).toBe(pairs.length);
    expect(new Set(pairs.map((p) => p[2])).size).toBe(pairs.length);
    const offsets = s.meta?.needleOffsets as number[];
    offsets.forEach((o, i) =>
      expect(s.context.startsWith(`The value for key ${keys[i]}`, o)).toBe(true),
    );
    expect(Math.max(...offsets) - Math.min(...offsets)).toBeGreaterThan(0);
  });

  it('scores the fraction of values returned exactly', () => {
    const s = sample('ruler_niah');
    const [a, b, c, d] = list(s);
    expect(task.score(s, wrap(`1. ${a}\n2. ${b}`))).toBe(0.5);
    expect(task.score(s, wrap(`${a.toUpperCase()} ${b} ${c}`))).toBe(0.75);
    expect(task.score(s, wrap(`${a.slice(0, -1)}x ${b.slice(1)} ${c}x ${d}`))).toBe(0.25);
    expect(task.score(s, wrap((s.meta?.keys as string[]).join('\n')))).toBe(0);
  });
});

describe('RULER VT', () => {
  const task = getTask('ruler_vt');

  it('puts eight in-order chains of four hops in filler text', () => {
    const s = sample('ruler_vt', 5, 4096);
    const chains = s.meta?.chains as string[][];
    const values = s.meta?.chainValues as number[];
    expect(chains).toHaveLength(8);
    expect(new Set(values).size).toBe(8);
    expect(new Set(chains.flat()).size).toBe(40);
    chains.forEach((vars, c) => {
      expect(vars).toHaveLength(5);
      vars.forEach((v) => expect(v).toMatch(/^[A-Z]{5}$/));
      const positions = [
        s.context.indexOf(`VAR ${vars[0]} = ${values[c]}.`),
        ...vars.slice(1).map((v, i) => s.context.indexOf(`VAR ${v} = VAR ${vars[i]}.`)),
      ];
      positions.forEach((p) => expect(p).toBeGreaterThanOrEqual(0));
      expect(positions).toEqual([...positions].sort((x, y) => x - y));
    });
    expect(s.answer).toEqual(chains[0]);
    expect(s.question).toContain(String(s.meta?.value));
    expect(s.meta?.value).toBe(values[0]);
    expect(s.context.match(/VAR /g)?.length).toBe(8 * 5 + 8 * 4);
    expect(s.meta?.fillerSentences as number).toBeGreaterThan(200);
  });

  it('scores IoU of the variable sets', () => {
    const s = sample('ruler_vt');
    const gold = list(s);
    const other = (s.meta?.chains as string[][])[1][0];
    expect(task.score(s, wrap(gold.map((v) => `VAR ${v.toLowerCase()}`).join(', ')))).toBe(1);
    expect(task.score(s, wrap([...gold.slice(0, 3), other].join(' ')))).toBe(3 / 6);
    expect(task.score(s, wrap(other))).toBe(0);
  });

  it('reads only the names: the value the embedded model writes first does not count', () => {
    const s = sample('ruler_vt');
    const gold = list(s);
    expect(task.score(s, wrap(`${s.meta?.value} ${gold.join(' ')}`))).toBe(1);
    expect(task.score(s, wrap(`${s.meta?.value} ${gold[0]}`))).toBe(1 / 5);
  });
});

describe('RULER CWE', () => {
  const task = getTask('ruler_cwe');

  it('repeats 10 words 30 times among rare words repeated 3 times', () => {
    const s = sample('ruler_cwe', 5, 4096);
    expect(s.meta).toMatchObject({ commonFrequency: 30, rareFrequency: 3 });
    const lines = s.context.split('\n');
    lines.forEach((l, i) => expect(l).toMatch(new RegExp(`^${i + 1}\\. [a-z]+$`)));
    const counts = new Map<string, number>();
    for (const l of lines) {
      const w = l.split(' ')[1];
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    const common = new Set(list(s));
    expect(common.size).toBe(10);
    for (const [w, n] of counts) expect(n).toBe(common.has(w) ? 30 : 3);
    expect(counts.size - 10).toBe(s.meta?.rareWords);
    expect(counts.size).toBeGreaterThan(100);
  });

  it('scales the frequencies down 10:1 when 30 repeats do not fit', () => {
    const s = sample('ruler_cwe', 5, 1024, 'chars');
    const cf = s.meta?.commonFrequency as number;
    expect(cf).toBeLessThan(30);
    expect(s.meta?.rareFrequency).toBe(Math.max(1, Math.floor(cf / 10)));
    expect(s.question).toContain(`appear ${cf} times each`);
  });

  it('scores IoU of the word sets', () => {
    const s = sample('ruler_cwe');
    const gold = list(s);
    const rare = CWE_WORDS.filter((w) => !gold.includes(w)).slice(0, 5);
    expect(task.score(s, wrap(gold.map((w) => w.toUpperCase()).join(', ')))).toBe(1);
    expect(task.score(s, wrap(numbered([...gold.slice(0, 5), ...rare])))).toBe(5 / 15);
    expect(task.score(s, wrap(numbered(gold.slice(0, 4))))).toBe(0.4);
  });

  it('ships a word list without duplicates or non-letters', () => {
    expect(CWE_WORDS.length).toBeGreaterThan(2000);
    CWE_WORDS.forEach((w) => expect(w).toMatch(/^[a-z]+$/));
  });
});

describe('story tasks', () => {
  it('gives each chapter a unique location-character pair, one purchase and a unique item', () => {
    const story = new Story(3, 'test');
    const pairs = new Set<string>();
    const items = new Set<string>();
    const held = new Set<string>();
    for (let id = 1; id <= 200; id++) {
      const ch = story.chapter(id);
      pairs.add(`${ch.location}|${ch.character}`);
      items.add(ch.item);
      expect(ch.buy).toContain(ch.item);
      expect(ch.buy).toContain(ch.character);
      if (ch.soldFrom !== null) {
        expect(ch.soldFrom).toBeLessThan(id);
        const sold = story.chapter(ch.soldFrom).item;
        expect(held.delete(sold)).toBe(true);
        expect(ch.sell).toContain(sold);
      }
      held.add(ch.item);
    }
    expect(pairs.size).toBe(200);
    expect(items.size).toBe(200);
  });

  it('retrieval asks 16 questions whose answers sit in the asked chapters', () => {
    const s = sample('story_retrieval', 5, 4096);
    const questions = s.meta?.questions as { chapter: number; kind: string }[];
    expect(questions).toHaveLength(16);
    expect(new Set(questions.map((q) => q.chapter)).size).toBe(16);
    expect(s.question.split('\n')).toHaveLength(16);
    questions.forEach((q, i) => {
      expect(s.question).toContain(`${i + 1}. In Chapter ${q.chapter}, which`);
      expect(chapterText(s.context, q.chapter)).toContain(list(s)[i]);
    });
    expect(new Set(questions.map((q) => q.kind))).toEqual(
      new Set(['location', 'character', 'item']),
    );
  });

  it('retrieval scores the mean exact match, ignoring case, articles and final periods', () => {
    const task = getTask('story_retrieval');
    const s = sample('story_retrieval', 5, 4096);
    const gold = list(s);
    const loose = gold.map((g, i) => `${i + 1}) The ${g.toUpperCase()}.`).join('\n');
    expect(task.score(s, wrap(loose))).toBe(1);
    const half = gold.map((g, i) => `${i + 1}. ${i % 2 === 0 ? g : 'Nowhere'}`).join('\n');
    expect(task.score(s, wrap(half))).toBe(0.5);
    const shuffled = gold.map((_, i) => `${i + 1}. ${gold[(i + 1) % gold.length]}`).join('\n');
    expect(task.score(s, wrap(shuffled))).toBe(0);
  });

  it('multi-hop asks for the item bought in the chapter before the asked one', () => {
    const s = sample('story_multihop', 5, 4096);
    const asked = s.meta?.askedChapter as number;
    expect(s.meta?.answerChapter).toBe(asked - 1);
    expect(s.question).toContain(s.meta?.askedItem as string);
    expect(chapterText(s.context, asked - 1)).toContain(s.answer as string);
    expect(chapterText(s.context, asked)).toContain(s.meta?.askedItem as string);
    const chapters = s.meta?.chapters as number;
    const story = new Story(5, 'story_multihop');
    for (let id = 1; id <= chapters; id++) {
      expect(chapterText(s.context, id)).toContain(story.chapter(id).buy);
    }
    const task = getTask('story_multihop');
    expect(task.score(s, wrap(`The ${(s.answer as string).toUpperCase()}.`))).toBe(1);
    expect(task.score(s, wrap(s.meta?.askedItem as string))).toBe(0);
  });

  it('filtering removes the purchases (and later sales) of exactly three chapters', () => {
    const s = sample('story_filtering', 5, 4096);
    const removed = list(s).map(Number);
    expect(removed).toHaveLength(3);
    expect(removed).toEqual([...removed].sort((a, b) => a - b));
    expect(s.question).toContain('exactly 3 such chapters');
    const story = new Story(5, 'story_filtering');
    const chapters = s.meta?.chapters as number;
    expect(chapters).toBeGreaterThan(20);
    for (let id = 1; id <= chapters; id++) {
      const ch = story.chapter(id);
      const text = chapterText(s.context, id);
      expect(text.includes(ch.buy)).toBe(!removed.includes(id));
      if (ch.sell !== null && ch.soldFrom !== null) {
        expect(text.includes(ch.sell)).toBe(!removed.includes(ch.soldFrom));
      }
    }
  });

  it('filtering scores IoU of the chapter sets', () => {
    const task = getTask('story_filtering');
    const s = sample('story_filtering', 5, 4096);
    const [a, b, c] = list(s).map(Number);
    const wrong = [1, 2, 3, 4, 5].find((x) => ![a, b, c].includes(x)) as number;
    expect(task.score(s, wrap(`Chapter ${c}, Chapter ${a}, Chapter ${b}`))).toBe(1);
    expect(task.score(s, wrap(`${a}, ${b}, ${wrong}`))).toBe(2 / 4);
    expect(task.score(s, wrap(`${a}`))).toBe(1 / 3);
    expect(task.score(s, wrap(`${wrong}`))).toBe(0);
  });
});

describe('task helpers', () => {
  it('seeded streams are reproducible and independent', () => {
    const a = rngFor(1, 'x');
    const b = rngFor(1, 'x');
    const seqA = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(seqA);
    const c = rngFor(1, 'y');
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(seqA);
    const d = rngFor(2, 'x');
    expect(Array.from({ length: 5 }, () => d.next())).not.toEqual(seqA);
    const r = new Rng(9);
    const picked = r.sample([1, 2, 3, 4, 5, 6], 6);
    expect([...picked].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    for (let i = 0; i < 100; i++) {
      const x = r.range(3, 5);
      expect(x >= 3 && x <= 5).toBe(true);
    }
  });

  it('finds the largest fitting size', () => {
    expect(largestFitting(0, 100, (n) => n <= 37)).toBe(37);
    expect(largestFitting(5, 100, () => false)).toBe(4);
    expect(largestFittingUnbounded(0, 1e6, (n) => n <= 12345)).toBe(12345);
    expect(largestFittingUnbounded(0, 50, () => true)).toBe(50);
  });

  it('extracts the last answer and compares sets and phrases', () => {
    expect(extractAnswer('<answer>a</answer><answer> b </answer>')).toBe('b');
    expect(extractAnswer('<Answer>\nc')).toBe('c');
    expect(extractAnswer('no tags')).toBeNull();
    expect(iou(new Set([1, 2]), new Set([2, 3]))).toBe(1 / 3);
    expect(iou(new Set(), new Set())).toBe(1);
    expect(normalizePhrase('  The  Leptis   Magna. ')).toBe('leptis magna');
  });
});
