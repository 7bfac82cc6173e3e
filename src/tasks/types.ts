/** Counts tokens the way the model will see them (the model's own tokenizer in the app). */
export interface TokenCounter {
  count(text: string): number;
}

export interface ChatMessage {
  role: 'system' | 'user';
  content: string;
}

/** One generated prompt with its gold answer. */
export interface TaskSample {
  task: string;
  seed: number;
  targetTokens: number;
  /** The haystack: the text between <context> and </context>. */
  context: string;
  /** The question, stated once before and once after the context. */
  question: string;
  /** The whole prompt; asks for the answer inside <answer>...</answer>. */
  prompt: string;
  /** The same prompt split for a chat template: the task introduction as system, the rest as user. */
  chatMessages: ChatMessage[];
  answer: string[] | string;
  /** tokenizer.count(prompt); between 0.9 and 1.0 of targetTokens. */
  tokenCount: number;
  meta?: Record<string, unknown>;
}

export interface GenerateOptions {
  seed: number;
  targetTokens: number;
  tokenizer: TokenCounter;
}

export interface TaskDefinition {
  name: string;
  label: string;
  description: string;
  /** The paper's characterisation: how spread out the needed facts are, and how much of the context they cover. */
  characterisation: { dispersion: 'low' | 'high'; scope: 'low' | 'high' };
  generate(opts: GenerateOptions): TaskSample;
  /** What a perfect model writes inside the answer tags, in the format the prompt asks for. */
  goldAnswer(sample: TaskSample): string;
  /** Score in [0, 1] of a model output against the sample's gold answer. */
  score(sample: TaskSample, output: string): number;
}
