/**
 * Text <-> token ids through @huggingface/tokenizers (tokenizer.json + tokenizer_config.json), and
 * chat prompts through the checkpoint's Jinja chat template (@huggingface/jinja). Browser-safe:
 * the caller supplies the parsed JSON files.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

type Raw = Record<string, unknown>;

const isObject = (value: unknown): value is Raw =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** tokenizer_config.json writes special tokens as strings or as {content: ...} objects. */
function tokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return null;
}

/** chat_template is a string, or a list of {name, template} with a 'default' one. */
function chatTemplate(config: Raw): string | null {
  const value = config.chat_template;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.filter(isObject);
    const pick = named.find((t) => t.name === 'default') ?? named[0];
    return pick && typeof pick.template === 'string' ? pick.template : null;
  }
  return null;
}

function characterLevel(
  json: Raw,
  emptyIds: readonly number[],
): { added: string[]; specialTokens: number } | null {
  const model = json.model as Raw;
  const merges = model.merges;
  const vocab = model.vocab;
  if (model.type !== 'BPE' || !Array.isArray(merges) || merges.length > 0 || !isObject(vocab)) {
    return null;
  }
  if (json.normalizer || json.pre_tokenizer) return null;
  const added = Array.isArray(json.added_tokens)
    ? json.added_tokens.map((t) => tokenText(t)).filter((t): t is string => t !== null)
    : [];
  const addedSet = new Set(added);
  const single = Object.keys(vocab).every((t) => addedSet.has(t) || [...t].length === 1);
  return single ? { added, specialTokens: emptyIds.length } : null;
}

export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly config: Raw;
  private template: Template | null = null;
  readonly chatTemplate: string | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** Added tokens' texts, when every other token is one character (see `count`); else null. */
  private readonly characterLevel: { added: string[]; specialTokens: number } | null;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown = {}) {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
      throw new Error('tokenizer.json: not a Hugging Face tokenizers file (no "model")');
    }
    this.config = isObject(tokenizerConfig) ? tokenizerConfig : {};
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, this.config);
    } catch (error) {
      throw new Error(`tokenizer.json: cannot load: ${(error as Error).message}`, { cause: error });
    }
    this.chatTemplate = chatTemplate(this.config);
    this.bosToken = tokenText(this.config.bos_token);
    this.eosToken = tokenText(this.config.eos_token);
    this.characterLevel = characterLevel(tokenizerJson, this.encode(''));
  }

  /**
   * Token count of encode(text). A character-level tokenizer (a BPE with no merges, no normalizer
   * or pre-tokenizer, and one-character tokens) gives one token per character, so the count is
   * the text's length plus what the post-processor adds: task generators call this many times per
   * prompt while they fit a length, and this makes it instant.
   */
  count(text: string): number {
    const c = this.characterLevel;
    if (c && !c.added.some((t) => text.includes(t))) {
      // Code points, not UTF-16 units: the tokenizer splits text into characters.
      return Array.from(text).length + c.specialTokens;
    }
    return this.encode(text).length;
  }

  /** Ids of the text; with addSpecialTokens (default true) as the post-processor adds them (BOS). */
  encode(text: string, { addSpecialTokens = true } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: readonly number[], { skipSpecialTokens = false } = {}): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: skipSpecialTokens });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** The eos token's id, if tokenizer_config.json names one. */
  get eosTokenId(): number | null {
    return this.eosToken === null ? null : (this.tokenToId(this.eosToken) ?? null);
  }

  /** Renders the chat template (throws if the checkpoint has none). */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    { addGenerationPrompt = true, extra = {} as Record<string, unknown> } = {},
  ): string {
    if (!this.chatTemplate) throw new Error('tokenizer_config.json has no chat_template');
    this.template ??= new Template(this.chatTemplate);
    return this.template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
      ...extra,
    });
  }

  /** Chat prompt ids: the template's text encoded without adding special tokens again. */
  encodeChat(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}) {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }
}
