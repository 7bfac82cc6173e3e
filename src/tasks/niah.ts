import { extractAnswer, numberedLines } from './answer';
import { largestFittingUnbounded, tooSmall } from './fill';
import { makeSample, promptTokens, type PromptParts } from './prompt';
import { Rng, rngFor } from './random';
import type { GenerateOptions, TaskDefinition, TaskSample } from './types';

const NAME = 'ruler_niah';
const NEEDLES = 4;
const KV_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

const INTRO =
  'I will give you a document made of many key-value statements. Your task is to find the values that belong to the keys I ask about.';
const ANSWER_FORMAT =
  '1. The answer for <key1> is <value1>.\n2. The answer for <key2> is <value2>.\netc.';
const RULES = [
  'Answer the keys in the order they are requested, one per line, in the format "<number>. The answer for <key> is <value>."',
  'Copy keys and values exactly as they appear in the document.',
];

/** Four groups of 8 lowercase letters or digits joined by "-". */
function kvString(rng: Rng): string {
  return [0, 1, 2, 3].map(() => rng.chars(KV_ALPHABET, 8)).join('-');
}

function sentence(key: string, value: string): string {
  return `The value for key ${key} is: ${value}.`;
}

function parts(keys: readonly string[], sentences: readonly string[]): PromptParts {
  return {
    intro: INTRO,
    multiple: true,
    question: `Extract the values for the following keys: ${keys.join(', ')}`,
    context: sentences.join(' '),
    answerFormat: ANSWER_FORMAT,
    rules: RULES,
  };
}

function generate(opts: GenerateOptions): TaskSample {
  const rng = rngFor(opts.seed, NAME);
  const used = new Set<string>();
  const fresh = (): string => {
    let s = kvString(rng);
    while (used.has(s)) s = kvString(rng);
    used.add(s);
    return s;
  };
  const needles = Array.from({ length: NEEDLES }, () => ({ key: fresh(), value: fresh() }));
  const keys = needles.map((n) => n.key);
  const needleSentences = needles.map((n) => sentence(n.key, n.value));
  const distractors: string[] = [];
  const withDistractors = (d: number): string[] => {
    while (distractors.length < d) distractors.push(sentence(fresh(), fresh()));
    return [...needleSentences, ...distractors.slice(0, d)];
  };
  const fits = (d: number) =>
    promptTokens(parts(keys, withDistractors(d)), opts) <= opts.targetTokens;
  const count = largestFittingUnbounded(0, 1_000_000, fits);
  if (count < 0) throw tooSmall(NAME, opts.targetTokens, 'the four needles');

  const order = rngFor(opts.seed, `${NAME}/order`);
  const sentences = order.shuffle(withDistractors(count));
  const needleSet = new Set(needleSentences);
  while (promptTokens(parts(keys, sentences), opts) > opts.targetTokens) {
    const drop = sentences.findLastIndex((s) => !needleSet.has(s));
    if (drop < 0) throw tooSmall(NAME, opts.targetTokens, 'the four needles');
    sentences.splice(drop, 1);
  }
  const final = parts(keys, sentences);
  return makeSample({
    task: NAME,
    opts,
    parts: final,
    answer: needles.map((n) => n.value),
    meta: {
      keys,
      distractors: sentences.length - NEEDLES,
      needleOffsets: needleSentences.map((s) => final.context.indexOf(s)),
    },
  });
}

/** Fraction of needle values returned exactly (as whole tokens) in the answer section. */
function score(sample: TaskSample, output: string): number {
  const text = extractAnswer(output);
  if (text === null) return 0;
  const returned = new Set(text.toLowerCase().split(/[^a-z0-9-]+/));
  const values = sample.answer as string[];
  return values.filter((v) => returned.has(v)).length / values.length;
}

/** "1. The answer for <key> is <value>." per needle, in the order asked. */
function goldAnswer(sample: TaskSample): string {
  const keys = sample.meta?.keys as string[];
  return numberedLines(
    (sample.answer as string[]).map((v, i) => `The answer for ${keys[i]} is ${v}.`),
  );
}

export const niahTask: TaskDefinition = {
  name: NAME,
  label: 'RULER NIAH',
  description:
    'Four needles "The value for key K is: V." hidden among distractor key-value statements; return the four values.',
  characterisation: { dispersion: 'low', scope: 'low' },
  generate,
  goldAnswer,
  score,
};
