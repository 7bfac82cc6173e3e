import type { ChatMessage, GenerateOptions, TaskSample } from './types';

/**
 * The prompt shape shared by all tasks (the paper's reference code uses the same layout): a task
 * introduction, the question, the context, the question again, then how to answer inside
 * <answer>...</answer>.
 */
export interface PromptParts {
  intro: string;
  /** Several numbered questions (story retrieval) or a single one. */
  multiple: boolean;
  question: string;
  context: string;
  answerFormat: string;
  /** Task-specific rules, one per bullet. */
  rules: readonly string[];
}

export interface RenderedPrompt {
  prompt: string;
  chatMessages: ChatMessage[];
}

function body(p: PromptParts): string {
  const noun = p.multiple ? 'questions' : 'question';
  const tag = p.multiple ? 'questions' : 'question';
  const lead = p.multiple
    ? 'Below are your questions. I will state them both before and after the context.'
    : 'Below is your question. I will state it both before and after the context.';
  const rules = [
    ...p.rules,
    'Keep the explanation short and to the point.',
    'Write nothing but the answer inside the answer tags, exactly in the format above.',
  ];
  return [
    lead,
    `<${tag}>\n${p.question}\n</${tag}>`,
    `<context>\n${p.context}\n</context>`,
    `<${tag}_repeated>\n${p.question}\n</${tag}_repeated>`,
    [
      'Instructions:',
      `1. First, briefly explain how you found the information needed for the ${noun} in the context.`,
      '2. Then give your final answer in exactly this format:',
      `<answer>\n${p.answerFormat}\n</answer>`,
    ].join('\n'),
    'Your response must look like this:\n<explanation>\nYour explanation...\n</explanation>\n<answer>\nYour answer...\n</answer>',
    `Important:\n${rules.map((r) => `- ${r}`).join('\n')}`,
  ].join('\n\n');
}

export function renderPrompt(p: PromptParts): RenderedPrompt {
  const rest = body(p);
  return {
    prompt: `${p.intro}\n\n${rest}`,
    chatMessages: [
      { role: 'system', content: p.intro },
      { role: 'user', content: rest },
    ],
  };
}

/** Assembles a TaskSample from its final prompt parts. */
export function makeSample(args: {
  task: string;
  opts: GenerateOptions;
  parts: PromptParts;
  answer: string[] | string;
  meta: Record<string, unknown>;
}): TaskSample {
  const { prompt, chatMessages } = renderPrompt(args.parts);
  return {
    task: args.task,
    seed: args.opts.seed,
    targetTokens: args.opts.targetTokens,
    context: args.parts.context,
    question: args.parts.question,
    prompt,
    chatMessages,
    answer: args.answer,
    tokenCount: args.opts.tokenizer.count(prompt),
    meta: args.meta,
  };
}

/** Token count of the prompt the parts render to. */
export function promptTokens(parts: PromptParts, opts: GenerateOptions): number {
  return opts.tokenizer.count(renderPrompt(parts).prompt);
}
