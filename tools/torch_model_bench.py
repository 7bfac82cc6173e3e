"""transformers' Llama on the SmolLM2-135M shape, for `npm run bench -- --only model` to compare with.

Run on the GPU machine (see tools/gpu_bench.sh):  python3 torch_model_bench.py --json torch_model.json
LlamaForCausalLM built from a LlamaConfig with SmolLM2-135M's exact shapes and random weights
(transformers' own init), eager attention, fp32 (TF32 off), batch 1, on cuda. The same quantities
as src/cli/bench.ts's model rows:
- decode tokens/s at a context C of 1K and 8K: greedy steps (argmax on the GPU, the KV cache
  growing as in generate()) that see C - 32 to C - 1 cached tokens, as ours do; WARMUP_STEPS
  untimed steps before them. The CUDA events span the whole Python loop, so the time includes the
  host's launch overhead: compare with our wall-clock column (a caller's tokens/s); ours from GPU
  time is beside it.
- prefill tokens/s at 4K: one forward over the prompt with use_cache that computes the last
  position's logits only (logits_to_keep=1, as generate() prefills; ours computes the same).
Times with CUDA events after a warm-up, as tools/torch_attention_bench.py does.
"""
import argparse
import inspect
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
MAX_POSITIONS = 8192
DECODE_CONTEXTS = [1024, 8192]
PREFILL_LENGTH = 4096
DECODE_STEPS = 32
WARMUP_STEPS = 4


def build_model():
    config = LlamaConfig(**SHAPE, max_position_embeddings=MAX_POSITIONS)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(device="cuda", dtype=torch.float32).eval()
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    if model.config._attn_implementation != "eager":
        raise SystemExit(f"attention is {model.config._attn_implementation}, not eager")
    return model


def last_logits_only(model):
    """The forward's argument that limits the logits to the last position, where it has one."""
    parameters = inspect.signature(model.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in parameters:
            return {name: 1}
    return {}


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
    """Prefill, then greedy steps: WARMUP_STEPS untimed, DECODE_STEPS timed, the last of which sees
    context - 1 cached tokens."""
    length = context - DECODE_STEPS - WARMUP_STEPS - 1
    out = model(input_ids=prompt(length), use_cache=True, **last_logits_only(model))
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
    cached = cache.get_seq_length() if hasattr(cache, "get_seq_length") else cache[0][0].shape[-2]
    if cached != context - 1:
        raise SystemExit(f"decode at {context}: the cache holds {cached} tokens, not {context - 1}")
    return DECODE_STEPS / (ms / 1e3), ms / DECODE_STEPS


@torch.no_grad()
def prefill_tokens_per_second(model, length, repeats=3):
    ids = prompt(length)
    keep = last_logits_only(model)
    model(input_ids=ids, use_cache=True, **keep)
    times = sorted(
        elapsed_ms(lambda: model(input_ids=ids, use_cache=True, **keep)) for _ in range(repeats)
    )
    ms = times[len(times) // 2]
    return length / (ms / 1e3), ms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
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
        attention=model.config._attn_implementation,
        logits=f"prefill keeps {last_logits_only(model) or 'every position'}",
        rows=rows,
    )
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
