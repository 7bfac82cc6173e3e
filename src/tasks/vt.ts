import { extractAnswer, iou } from './answer';
import { FILLER_SENTENCES } from './data/filler';
import { largestFittingUnbounded, tooSmall } from './fill';
import { makeSample, promptTokens, type PromptParts } from './prompt';
import { rngFor } from './random';
import type { GenerateOptions, TaskDefinition, TaskSample } from './types';

const NAME = 'ruler_vt';
const CHAINS = 8;
const HOPS = 4;
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

const INTRO = [
  'I will give you a text that contains variable assignments hidden among ordinary sentences. There are two kinds of assignment:',
  '1. A numeric assignment sets a variable to a number (for example "VAR ABCDE = 12345").',
  '2. A copy assignment sets a variable equal to another variable (for example "VAR FGHIJ = VAR ABCDE").',
  'Variable names are five uppercase letters. Assignments can appear anywhere in the text.',
].join('\n');
const ANSWER_FORMAT = 'VARIABLE_ONE VARIABLE_TWO etc.';
const RULES = [
  'List only the names of the variables that resolve to the value, in any order, separated by spaces.',
  'Do not write the "VAR" prefix and do not add punctuation.',
];

function question(value: number): string {
  return `Which variables resolve to the value ${value}? A variable resolves to ${value} if it is assigned ${value} directly, or assigned another variable that resolves to ${value}.`;
}

function parts(value: number, items: readonly string[]): PromptParts {
  return {
    intro: INTRO,
    multiple: false,
    question: question(value),
    context: items.join(' '),
    answerFormat: ANSWER_FORMAT,
    rules: RULES,
  };
}

function generate(opts: GenerateOptions): TaskSample {
  const rng = rngFor(opts.seed, NAME);
  const names = new Set<string>();
  while (names.size < CHAINS * (HOPS + 1)) names.add(rng.chars(UPPER, 5));
  const allNames = [...names];
  const values = new Set<number>();
  while (values.size < CHAINS) values.add(rng.range(10000, 99999));
  const chainValues = [...values];
  const chains = chainValues.map((_, c) => allNames.slice(c * (HOPS + 1), (c + 1) * (HOPS + 1)));
  const statements = chains.map((vars, c) => [
    `VAR ${vars[0]} = ${chainValues[c]}.`,
    ...vars.slice(1).map((v, i) => `VAR ${v} = VAR ${vars[i]}.`),
  ]);
  const target = chainValues[0];

  const filler: string[] = [];
  const fillerUpTo = (f: number): string[] => {
    while (filler.length < f) filler.push(rng.pick(FILLER_SENTENCES));
    return filler.slice(0, f);
  };
  const fits = (f: number) =>
    promptTokens(parts(target, [...statements.flat(), ...fillerUpTo(f)]), opts) <=
    opts.targetTokens;
  let fillerCount = largestFittingUnbounded(0, 1_000_000, fits);
  if (fillerCount < 0) throw tooSmall(NAME, opts.targetTokens, 'eight chains');

  // Each chain keeps its order; its statements land at random places among the filler.
  const order = rngFor(opts.seed, `${NAME}/order`);
  const slots = order.shuffle([
    ...statements.flatMap((chain, c) => chain.map(() => c)),
    ...Array.from({ length: fillerCount }, () => -1),
  ]);
  const layout = (): string[] => {
    const next = new Array<number>(CHAINS).fill(0);
    let f = 0;
    const items: string[] = [];
    for (const slot of slots) {
      if (slot >= 0) items.push(statements[slot][next[slot]++]);
      else if (f < fillerCount) items.push(filler[f++]);
    }
    return items;
  };
  let items = layout();
  while (promptTokens(parts(target, items), opts) > opts.targetTokens) {
    if (fillerCount === 0) throw tooSmall(NAME, opts.targetTokens, 'eight chains');
    fillerCount--;
    items = layout();
  }
  return makeSample({
    task: NAME,
    opts,
    parts: parts(target, items),
    answer: chains[0],
    meta: { value: target, chains, chainValues, fillerSentences: fillerCount },
  });
}

/** IoU of the returned variable names with the first chain's variables. */
function score(sample: TaskSample, output: string): number {
  const text = extractAnswer(output);
  if (text === null) return 0;
  const predicted = new Set(
    text
      .toUpperCase()
      .replace(/\bVAR\b/g, ' ')
      .split(/[^A-Z]+/)
      .filter((w) => w.length > 0),
  );
  return iou(predicted, new Set(sample.answer as string[]));
}

/** The first chain's variables, in chain order. */
function goldAnswer(sample: TaskSample): string {
  return (sample.answer as string[]).join(' ');
}

export const vtTask: TaskDefinition = {
  name: NAME,
  label: 'RULER VT',
  description:
    'Eight chains of four hops ("VAR X = 12345", "VAR Y = VAR X") in filler text; name every variable bound to the first chain\'s value.',
  characterisation: { dispersion: 'high', scope: 'low' },
  generate,
  goldAnswer,
  score,
};
