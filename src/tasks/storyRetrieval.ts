import {
  answerLines,
  extractAnswer,
  normalizePhrase,
  splitEnumeration,
  numberedLines,
} from './answer';
import { largestFitting, tooSmall } from './fill';
import { makeSample, promptTokens, type PromptParts } from './prompt';
import { rngFor } from './random';
import { fitStory, Story, STORY_INTRO, type Chapter } from './story';
import type { GenerateOptions, TaskDefinition, TaskSample } from './types';

const NAME = 'story_retrieval';
const QUESTIONS = 16;
/** The two copies of the questions may take at most this share of the target (short targets ask fewer). */
const QUESTION_SHARE = 0.4;

const ANSWER_FORMAT = '1. ANSWER_ONE\n2. ANSWER_TWO\netc.';
const RULES = [
  'Answer every question on its own line, numbered like the questions.',
  'Give only the name of the location, character or item, without articles such as "the" or "a".',
  'Write names exactly as they appear in the story.',
];

type Kind = 'location' | 'character' | 'item';
const KINDS: readonly Kind[] = ['location', 'character', 'item'];

function questionText(index: number, chapter: number, kind: Kind): string {
  const ask = {
    location: 'which specific location did the protagonist visit?',
    character: 'which character did the protagonist meet?',
    item: 'which specific item did the protagonist acquire?',
  }[kind];
  return `${index}. In Chapter ${chapter}, ${ask}`;
}

function goldFor(ch: Chapter, kind: Kind): string {
  return kind === 'location' ? ch.location : kind === 'character' ? ch.character : ch.item;
}

function parts(questions: readonly string[], story: string): PromptParts {
  return {
    intro: STORY_INTRO,
    multiple: true,
    question: questions.join('\n'),
    context: story,
    answerFormat: ANSWER_FORMAT,
    rules: RULES,
  };
}

/** k questions of the longest kind about a chapter with the largest number: the draft's stand-in. */
function placeholders(k: number, chapters: number): string[] {
  return Array.from({ length: k }, (_, i) => questionText(i + 1, chapters, 'location'));
}

function generate(opts: GenerateOptions): TaskSample {
  const maxQuestions = largestFitting(
    1,
    QUESTIONS,
    (k) =>
      promptTokens(parts(placeholders(k, 999), ''), opts) <= QUESTION_SHARE * opts.targetTokens,
  );
  if (maxQuestions < 1) throw tooSmall(NAME, opts.targetTokens, 'one question');
  const story = new Story(opts.seed, NAME);
  const fitted = fitStory({
    task: NAME,
    story,
    opts,
    minChapters: 1,
    draft: (n, text) => parts(placeholders(Math.min(maxQuestions, n), n), text),
    settle: (n) => {
      const rng = rngFor(opts.seed, `${NAME}/questions/${n}`);
      const ids = Array.from({ length: n }, (_, i) => i + 1);
      const asked = rng
        .sample(ids, Math.min(maxQuestions, n))
        .map((chapter) => ({ chapter, kind: rng.pick(KINDS) }));
      const questions = asked.map((q, i) => questionText(i + 1, q.chapter, q.kind));
      return {
        asked,
        noPurchase: new Set<number>(),
        build: (text: string) => parts(questions, text),
      };
    },
  });
  const { asked } = fitted.settled;
  return makeSample({
    task: NAME,
    opts,
    parts: fitted.parts,
    answer: asked.map((q) => goldFor(story.chapter(q.chapter), q.kind)),
    meta: { questions: asked, chapters: fitted.chapters, atmosphere: fitted.atmosphere },
  });
}

/** Mean exact match over the questions (case, spacing, articles and final punctuation ignored). */
function score(sample: TaskSample, output: string): number {
  const text = extractAnswer(output);
  if (text === null) return 0;
  const gold = sample.answer as string[];
  const lines = answerLines(text).map(splitEnumeration);
  const numbered = lines.some((l) => l.index !== null);
  const byIndex = new Map<number, string>();
  lines.forEach((l, i) => {
    const index = numbered ? l.index : i + 1;
    if (index !== null && !byIndex.has(index)) byIndex.set(index, normalizePhrase(l.text));
  });
  const correct = gold.filter((g, i) => byIndex.get(i + 1) === normalizePhrase(g)).length;
  return correct / gold.length;
}

function goldAnswer(sample: TaskSample): string {
  return numberedLines(sample.answer as string[]);
}

export const storyRetrievalTask: TaskDefinition = {
  name: NAME,
  label: 'Story Retrieval',
  description:
    'A templated story in chapters; 16 questions about the location, character or item of random chapters.',
  characterisation: { dispersion: 'low', scope: 'low' },
  generate,
  goldAnswer,
  score,
};
