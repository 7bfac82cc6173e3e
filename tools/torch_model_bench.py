"""transformers' Llama on the SmolLM2-135M shape, for `npm run bench -- --only model` to compare with.

Run on the GPU machine (see tools/gpu_bench.sh):  python3 torch_model_bench.py --json torch_model.json
LlamaForCausalLM built from a LlamaConfig with SmolLM2-135M's exact shapes and random weights
(transformers' own init), eager attention, fp32 (TF32 off), batch 1, on cuda. Decode tokens/s at a
context of 1K and 8K tokens (greedy steps after a prefill of that many tokens, the KV cache
growing as in generate()); prefill tokens/s at 4K (one forward over the prompt with use_cache).
Times with CUDA events after a warm-up, as tools/torch_attention_bench.py does.
"""
import argparse
import json

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

# SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json); src/cli/bench.ts uses the same numbers.
SHAPE = dict(
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    head_dim=64,
    rms_norm_eps=1e-5,
    rope_theta=100000.0,
    hidden_act="silu",
    tie_word_embeddings=True,
)
DECODE_CONTEXTS = [1024, 8192]
PREFILL_LENGTH = 4096
DECODE_STEPS = 32
WARMUP_STEPS = 4


def build_model():
    config = LlamaConfig(**SHAPE, max_position_embeddings=8192 + 2 * (DECODE_STEPS + WARMUP_STEPS))
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(device="cuda", dtype=torch.float32).eval()
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    return model


def prompt(length):
    generator = torch.Generator().manual_seed(length)
    return torch.randint(0, SHAPE["vocab_size"], (1, length), generator=generator).to("cuda")


def elapsed_ms(fn):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


@torch.no_grad()
def decode_tokens_per_second(model, context):
    """Prefill `context` tokens, then greedy steps: WARMUP_STEPS untimed, DECODE_STEPS timed."""
    out = model(input_ids=prompt(context), use_cache=True)
    cache = out.past_key_values
    token = out.logits[:, -1:].argmax(-1)

    def steps(count):
        nonlocal cache, token
        for _ in range(count):
            step = model(input_ids=token, past_key_values=cache, use_cache=True)
            cache = step.past_key_values
            token = step.logits[:, -1:].argmax(-1)

    steps(WARMUP_STEPS)
    ms = elapsed_ms(lambda: steps(DECODE_STEPS))
    return DECODE_STEPS / (ms / 1e3), ms / DECODE_STEPS


@torch.no_grad()
def prefill_tokens_per_second(model, length, repeats=3):
    ids = prompt(length)
    model(input_ids=ids, use_cache=True)
    times = sorted(elapsed_ms(lambda: model(input_ids=ids, use_cache=True)) for _ in range(repeats))
    ms = times[len(times) // 2]
    return length / (ms / 1e3), ms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = build_model()
    rows = []
    for context in DECODE_CONTEXTS:
        tokens_per_second, ms = decode_tokens_per_second(model, context)
        rows.append(dict(phase="decode", context=context, tokensPerSecond=tokens_per_second, msPerToken=ms))
        print(f"decode at {context}: {tokens_per_second:.1f} tokens/s ({ms:.3f} ms/token)")
    tokens_per_second, ms = prefill_tokens_per_second(model, PREFILL_LENGTH)
    rows.append(dict(phase="prefill", context=PREFILL_LENGTH, tokensPerSecond=tokens_per_second, ms=ms))
    print(f"prefill of {PREFILL_LENGTH}: {tokens_per_second:.1f} tokens/s ({ms:.2f} ms)")
    result = dict(
        device=torch.cuda.get_device_name(),
        torch=torch.__version__,
        transformers=transformers.__version__,
        model="LlamaForCausalLM, SmolLM2-135M shapes, random weights, eager attention, fp32",
        rows=rows,
    )
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
