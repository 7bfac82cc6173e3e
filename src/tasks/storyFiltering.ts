import { extractAnswer, iou } from './answer';
import { makeSample, type PromptParts } from './prompt';
import { rngFor } from './random';
import { fitStory, Story, STORY_INTRO } from './story';
import type { GenerateOptions, TaskDefinition, TaskSample } from './types';

const NAME = 'story_filtering';
const WITHOUT_PURCHASE = 3;

const ANSWER_FORMAT = 'chapter_number_1, chapter_number_2, ...';
const RULES = ['Give only the chapter numbers, separated by commas.'];

function question(count: number): string {
  return `Which chapters have no purchase? Identify all chapters in which the protagonist did not buy any item. There are exactly ${count} such chapters.`;
}

function parts(count: number, story: string): PromptParts {
  return {
    intro: STORY_INTRO,
    multiple: false,
    question: question(count),
    context: story,
    answerFormat: ANSWER_FORMAT,
    rules: RULES,
  };
}

/** Short stories leave at least one chapter with a purchase. */
function countFor(chapters: number): number {
  return Math.min(WITHOUT_PURCHASE, chapters - 1);
}

function generate(opts: GenerateOptions): TaskSample {
  const story = new Story(opts.seed, NAME);
  const fitted = fitStory({
    task: NAME,
    story,
    opts,
    minChapters: 2,
    draft: (n, text) => parts(countFor(n), text),
    settle: (n) => {
      const ids = Array.from({ length: n }, (_, i) => i + 1);
      const removed = rngFor(opts.seed, `${NAME}/removed/${n}`)
        .sample(ids, countFor(n))
        .sort((a, b) => a - b);
      return {
        removed,
        noPurchase: new Set(removed),
        build: (text: string) => parts(removed.length, text),
      };
    },
  });
  const { removed } = fitted.settled;
  return makeSample({
    task: NAME,
    opts,
    parts: fitted.parts,
    answer: removed.map(String),
    meta: { chapters: fitted.chapters, atmosphere: fitted.atmosphere },
  });
}

/** IoU of the returned chapter numbers ("Chapter N" mentions if any, else every number) with the gold set. */
function score(sample: TaskSample, output: string): number {
  const text = extractAnswer(output);
  if (text === null) return 0;
  const mentions = [...text.matchAll(/chapter\s+(\d+)/gi)].map((m) => m[1]);
  const numbers = mentions.length > 0 ? mentions : (text.match(/\d+/g) ?? []);
  const predicted = new Set(numbers.map(Number));
  return iou(predicted, new Set((sample.answer as string[]).map(Number)));
}

/** The chapter numbers in increasing order. */
function goldAnswer(sample: TaskSample): string {
  return (sample.answer as string[]).join(', ');
}

export const storyFilteringTask: TaskDefinition = {
  name: NAME,
  label: 'Story Filtering',
  description:
    'A templated story in chapters with the purchases removed from 3 chapters; name the chapters without a purchase.',
  characterisation: { dispersion: 'low', scope: 'high' },
  generate,
  goldAnswer,
  score,
};
