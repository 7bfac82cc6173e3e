"""The embedded model's tokenizer: one token per character, written as a Hugging Face tokenizer.json.

Every prompt of the study's tasks is printable ASCII plus newlines, so a character vocabulary of
about a hundred symbols covers it exactly. It makes a task's length in tokens its length in
characters, and its random keys and values tokenize the same way wherever they appear. It is a BPE
model with no merges, so it loads through the app's normal tokenizer path (@huggingface/tokenizers).
"""

import json
import sys
from pathlib import Path

import numpy as np

SPECIAL = ["<pad>", "<s>", "</s>", "<unk>"]
PAD, BOS, EOS, UNK = range(4)
CHARACTERS = ["\n"] + [chr(c) for c in range(32, 127)]
VOCAB_SIZE = 128  # rows of the embedding: the symbols above, padded to a multiple of 32


def vocabulary() -> dict:
    tokens = SPECIAL + CHARACTERS
    assert len(tokens) <= VOCAB_SIZE
    return {token: index for index, token in enumerate(tokens)}


def tokenizer_json() -> dict:
    vocab = vocabulary()
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, t in enumerate(SPECIAL)
    ]
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [BOS], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "Fuse"},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>",
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [],
        },
    }


def tokenizer_config() -> dict:
    return {
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False, "model_max_length": 4096,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def encode(text: str) -> list:
    """The ids tokenizer.json gives (BOS first); the tests check the TypeScript path agrees."""
    vocab = vocabulary()
    return [BOS] + [vocab.get(c, UNK) for c in text]


def encode_array(text: str) -> np.ndarray:
    """encode() as an int64 array, by table lookup for ASCII text (all task prompts)."""
    if not text.isascii():
        return np.array(encode(text), dtype=np.int64)
    table = np.full(128, UNK, dtype=np.int64)
    for token, index in vocabulary().items():
        if len(token) == 1:
            table[ord(token)] = index
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.concatenate([np.array([BOS], dtype=np.int64), table[codes]])


def decode(ids: list) -> str:
    """Text of ids, special tokens dropped."""
    tokens = SPECIAL + CHARACTERS
    return "".join(tokens[i] for i in ids if len(SPECIAL) <= i < len(tokens))


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json(), indent=1) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=1) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
