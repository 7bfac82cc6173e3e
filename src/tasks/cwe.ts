import { answerLines, extractAnswer, iou, splitEnumeration, numberedLines } from './answer';
import { CWE_WORDS } from './data/words';
import { largestFitting, tooSmall } from './fill';
import { makeSample, promptTokens, type PromptParts } from './prompt';
import { rngFor } from './random';
import type { GenerateOptions, TaskDefinition, TaskSample } from './types';

const NAME = 'ruler_cwe';
const COMMON_WORDS = 10;
const COMMON_FREQUENCY = 30;
const RARE_FREQUENCY = 3;
/** The common words' copies may take at most this share of the target. */
const COMMON_SHARE = 0.6;

const INTRO =
  'I will give you a numbered list of words. Your task is to find the words that occur most often in it. Solve it by reading the list carefully; do not write code or use tools to count.';
const RULES = ['List only the words, one per line, numbered like the format shows.'];

function question(common: number, rare: number): string {
  const rareTimes = rare === 1 ? 'once' : `${rare} times`;
  return `The list contains exactly ${COMMON_WORDS} words that appear ${common} times each. Every other word appears ${rareTimes}. The words are in random order. Which ${COMMON_WORDS} words appear ${common} times each?`;
}

function answerFormat(): string {
  return `1. word_one\n2. word_two\n...\n${COMMON_WORDS}. word_ten\n\nList exactly ${COMMON_WORDS} words.`;
}

function parts(common: number, rare: number, entries: readonly string[]): PromptParts {
  return {
    intro: INTRO,
    multiple: false,
    question: question(common, rare),
    context: entries.map((w, i) => `${i + 1}. ${w}`).join('\n'),
    answerFormat: answerFormat(),
    rules: RULES,
  };
}

function repeat(words: readonly string[], times: number): string[] {
  return Array.from({ length: times }, () => words).flat();
}

function generate(opts: GenerateOptions): TaskSample {
  const rng = rngFor(opts.seed, NAME);
  const words = rng.shuffle(CWE_WORDS.slice());
  const common = words.slice(0, COMMON_WORDS);
  const rare = words.slice(COMMON_WORDS);

  // The paper's frequencies (30 and 3) when the common words fit in COMMON_SHARE of the target;
  // shorter targets scale both down, 10:1 until the rare frequency reaches 1.
  const rareFor = (c: number) => Math.max(1, Math.floor((c * RARE_FREQUENCY) / COMMON_FREQUENCY));
  const commonFits = (c: number) =>
    promptTokens(parts(c, rareFor(c), repeat(common, c)), opts) <= COMMON_SHARE * opts.targetTokens;
  const commonFrequency = largestFitting(2, COMMON_FREQUENCY, commonFits);
  if (commonFrequency < 2) throw tooSmall(NAME, opts.targetTokens, 'the common words');
  const rareFrequency = rareFor(commonFrequency);

  const entriesFor = (r: number) => [
    ...repeat(common, commonFrequency),
    ...repeat(rare.slice(0, r), rareFrequency),
  ];
  let rareCount = largestFitting(
    0,
    rare.length,
    (r) =>
      promptTokens(parts(commonFrequency, rareFrequency, entriesFor(r)), opts) <= opts.targetTokens,
  );
  if (rareCount === rare.length) {
    throw new RangeError(`${NAME}: ${opts.targetTokens} tokens needs more words than the list has`);
  }

  const order = rngFor(opts.seed, `${NAME}/order`);
  let entries = order.shuffle(entriesFor(rareCount));
  // Token counts can depend on word order; drop rare words (all their copies) until it fits.
  while (promptTokens(parts(commonFrequency, rareFrequency, entries), opts) > opts.targetTokens) {
    const dropped = rare[--rareCount];
    entries = entries.filter((w) => w !== dropped);
  }
  return makeSample({
    task: NAME,
    opts,
    parts: parts(commonFrequency, rareFrequency, entries),
    answer: common,
    meta: { commonFrequency, rareFrequency, rareWords: rareCount, entries: entries.length },
  });
}

/** IoU of the listed words with the ten common words. */
function score(sample: TaskSample, output: string): number {
  const text = extractAnswer(output);
  if (text === null) return 0;
  const predicted = new Set(
    answerLines(text)
      .flatMap((line) => splitEnumeration(line).text.split(','))
      .map((w) =>
        w
          .trim()
          .toLowerCase()
          .replace(/[.;:!"'`*]+$/, ''),
      )
      .filter((w) => w.length > 0),
  );
  return iou(predicted, new Set(sample.answer as string[]));
}

function goldAnswer(sample: TaskSample): string {
  return numberedLines(sample.answer as string[]);
}

export const cweTask: TaskDefinition = {
  name: NAME,
  label: 'RULER CWE',
  description:
    'A numbered word list where 10 words appear 30 times and the rest 3 times; name the 10 common words.',
  characterisation: { dispersion: 'low', scope: 'high' },
  generate,
  goldAnswer,
  score,
};
