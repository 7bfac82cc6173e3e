/**
 * Fixture models made complete for the page: the engine needs a tokenizer, and the fixtures under
 * tests/fixtures/models/ have none. Each copy gets the embedded model's character tokenizer
 * (tools/train/char_tokenizer.py: one token per printable ASCII character, a BPE model without
 * merges), whose ~100 ids fit every fixture's vocabulary.
 */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SPECIAL = ['<pad>', '<s>', '</s>', '<unk>'];
const CHARACTERS = [
  '\n',
  ...Array.from({ length: 127 - 32 }, (_, i) => String.fromCharCode(32 + i)),
];

function tokenizerJson(): unknown {
  const vocab = Object.fromEntries([...SPECIAL, ...CHARACTERS].map((token, id) => [token, id]));
  const bos = { SpecialToken: { id: '<s>', type_id: 0 } };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [bos, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

const tokenizerConfig = {
  bos_token: '<s>',
  eos_token: '</s>',
  pad_token: '<pad>',
  unk_token: '<unk>',
  add_bos_token: true,
  add_eos_token: false,
  model_max_length: 4096,
  tokenizer_class: 'PreTrainedTokenizerFast',
};

/** Copies the fixture folder `from` to `to` and adds tokenizer.json and tokenizer_config.json. */
export function modelWithTokenizer(from: string, to: string): string {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    if (name !== 'reference.json') copyFileSync(join(from, name), join(to, name));
  }
  writeFileSync(join(to, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
  writeFileSync(join(to, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  return to;
}
