import { extractAnswer, normalizePhrase } from './answer';
import { ITEM_ADJECTIVES, ITEM_KINDS, ITEM_MATERIALS } from './data/story';
import { makeSample, type PromptParts } from './prompt';
import { rngFor } from './random';
import { fitStory, Story, STORY_INTRO } from './story';
import type { GenerateOptions, TaskDefinition, TaskSample } from './types';

const NAME = 'story_multihop';

const ANSWER_FORMAT = 'ITEM_NAME';
const RULES = [
  'Give only the item name, without articles such as "the" or "a".',
  'Write the item name exactly as it appears in the story.',
];

const longest = (words: readonly string[]) =>
  words.reduce((a, b) => (b.length > a.length ? b : a), '');
/** The draft's stand-in for the asked item: the longest name the vocabulary can make. */
const PLACEHOLDER_ITEM = [ITEM_ADJECTIVES, ITEM_MATERIALS, ITEM_KINDS].map(longest).join(' ');

function question(item: string): string {
  return `What was the last item that the protagonist acquired before acquiring the ${item}?`;
}

function parts(item: string, story: string): PromptParts {
  return {
    intro: STORY_INTRO,
    multiple: false,
    question: question(item),
    context: story,
    answerFormat: ANSWER_FORMAT,
    rules: RULES,
  };
}

function generate(opts: GenerateOptions): TaskSample {
  const story = new Story(opts.seed, NAME);
  const fitted = fitStory({
    task: NAME,
    story,
    opts,
    minChapters: 2,
    draft: (_n, text) => parts(PLACEHOLDER_ITEM, text),
    settle: (n) => {
      const chapter = rngFor(opts.seed, `${NAME}/question/${n}`).range(2, n);
      const item = story.chapter(chapter).item;
      return { chapter, noPurchase: new Set<number>(), build: (text: string) => parts(item, text) };
    },
  });
  const { chapter } = fitted.settled;
  return makeSample({
    task: NAME,
    opts,
    parts: fitted.parts,
    answer: story.chapter(chapter - 1).item,
    meta: {
      askedItem: story.chapter(chapter).item,
      askedChapter: chapter,
      answerChapter: chapter - 1,
      chapters: fitted.chapters,
      atmosphere: fitted.atmosphere,
    },
  });
}

/** Exact match of the item name (case, spacing, articles and final punctuation ignored). */
function score(sample: TaskSample, output: string): number {
  const text = extractAnswer(output);
  if (text === null) return 0;
  return normalizePhrase(text) === normalizePhrase(sample.answer as string) ? 1 : 0;
}

function goldAnswer(sample: TaskSample): string {
  return sample.answer as string;
}

export const storyMultihopTask: TaskDefinition = {
  name: NAME,
  label: 'Story Multi-hop',
  description:
    'A templated story in chapters; "what was the last item acquired before acquiring X?"',
  characterisation: { dispersion: 'high', scope: 'low' },
  generate,
  goldAnswer,
  score,
};
