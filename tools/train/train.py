"""Trains the playground's embedded default model on the study's six tasks (GPU machine, PyTorch).

Reads the JSON-lines samples that `dist-cli/tasks.mjs` writes (prompt, gold completion), encodes
them with the character tokenizer of char_tokenizer.py, trains a small Llama (transformers'
LlamaForCausalLM, so its weights are in the Hugging Face layout the app loads) and writes
config.json, model.safetensors (f16), tokenizer files and training_log.json to --out.

Batches hold rows of one length bucket so short samples waste no compute. Training starts on the
short warm-up samples of curriculum.py alone (--warmup-data), where most tokens are answers that
need a lookup, then moves to the task samples, longer buckets more often as it goes on, with a share
of the batches still warm-up ones. The loss is next-token cross-entropy on every token,
with the completion (the answer) weighted COMPLETION_WEIGHT times a prompt token: the prompt's
repeated question teaches copying, the completion teaches the task. With --lookup-weight, three
heads' attention at VT's lookups is supervised too, four with --relookup-head (lookup_attention.py).
Training stops at --steps or at --minutes, whichever comes first, so a run fits the GPU machine's
time limit.
"""

import argparse
import glob
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

import char_tokenizer
import lookup_attention
from vt_answers import supervision_targets, traced_completion

COMPLETION_WEIGHT = 5.0
BUCKETS = (1024, 1664, 2560, 3584, 4736)  # longest: a 4096-token prompt plus its completion and EOS
TASK_BUCKETS = BUCKETS[2:]


def model_config(max_positions: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=char_tokenizer.VOCAB_SIZE,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=32,
        max_position_embeddings=max_positions,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=char_tokenizer.BOS,
        eos_token_id=char_tokenizer.EOS,
        pad_token_id=char_tokenizer.PAD,
        attention_bias=False,
        mlp_bias=False,
    )


def encode_row(sample: dict, copy_chars: int) -> tuple[np.ndarray, int, dict]:
    """Token ids of prompt + completion + EOS, where the completion starts, and the targets of the
    attention that --lookup-weight supervises (vt_answers.supervision_targets)."""
    text = traced_completion(sample)
    prompt = char_tokenizer.encode_array(sample["prompt"])
    completion = char_tokenizer.encode_array(text)[1:]
    eos = np.array([char_tokenizer.EOS], dtype=np.int64)
    return (np.concatenate([prompt, completion, eos]), len(prompt),
            supervision_targets(sample["prompt"], text, copy_chars))


def load_rows(pattern: str, tasks: dict, copy_chars: int) -> dict:
    """Rows (ids, completion start, task index, supervised attention targets) grouped by the smallest
    bucket that holds them; `tasks` maps task names to indices and grows as new names appear."""
    buckets = {b: [] for b in BUCKETS}
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no training data matches {pattern}")
    for path in paths:
        with open(path) as f:
            for line in f:
                sample = json.loads(line)
                ids, start, targets = encode_row(sample, copy_chars)
                task = tasks.setdefault(sample["task"], len(tasks))
                bucket = next((b for b in BUCKETS if len(ids) <= b), None)
                if bucket is None:
                    raise ValueError(f"{path}: a sample of {len(ids)} tokens exceeds {BUCKETS[-1]}")
                buckets[bucket].append((ids, start, task, targets))
    return buckets


def make_batch(rows: list, length: int, device: str):
    ids = torch.full((len(rows), length), char_tokenizer.PAD, dtype=torch.long)
    weights = torch.zeros((len(rows), length), dtype=torch.float32)
    for r, (row, start, *_) in enumerate(rows):
        ids[r, : len(row)] = torch.from_numpy(row)
        # weights[t] weighs the prediction of token t + 1
        weights[r, : len(row) - 1] = 1.0
        weights[r, start - 1 : len(row) - 1] = COMPLETION_WEIGHT
    return ids.to(device, non_blocking=True), weights.to(device, non_blocking=True)


def bucket_mix(progress: float) -> list:
    """Sampling weight of each task bucket at a point of training: longer rows later."""
    long_share = min(1.0, 0.2 + progress * 1.6)
    return [1.0 - long_share * 0.8, 1.0 - long_share * 0.5, 0.2 + long_share]


def warmup_share(progress: float, alone: float, floor: float) -> float:
    """Share of batches drawn from the warm-up samples: all of them for the first `alone` of the
    run, then falling to `floor` by a quarter of the run later."""
    return 1.0 if progress < alone else max(floor, 1.0 - (progress - alone) * 4 * (1.0 - floor))


def lr_at(step: int, progress: float, peak: float, warmup: int) -> float:
    """Linear warm-up over steps, then a cosine to a tenth of the peak over the run's progress."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def greedy_eval(model, samples: list, device: str) -> list:
    """Greedy completions (text), one sample at a time with the KV cache, a little longer than gold."""
    model.eval()
    outputs = []
    for sample in samples:
        ids = torch.tensor([char_tokenizer.encode(sample["prompt"])], device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model.generate(ids, max_new_tokens=len(sample["completion"]) + 16, do_sample=False,
                                 eos_token_id=char_tokenizer.EOS, pad_token_id=char_tokenizer.PAD)
        outputs.append(char_tokenizer.decode(out[0, ids.shape[1]:].tolist()))
    model.train()
    return outputs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True, help="glob of training JSONL files")
    ap.add_argument("--warmup-data", help="glob of curriculum.py JSONL files, trained on first")
    ap.add_argument("--eval", help="JSONL of held-out samples, scored by exact answer match")
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", help="a model folder to continue from")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--stop-step", type=int,
                    help="stop here, inside the --steps schedule (replays a run that hit --minutes)")
    ap.add_argument("--batch-tokens", type=int, default=96 * 1024)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup-alone", type=float, default=0.3,
                    help="share of the run trained on warm-up samples alone")
    ap.add_argument("--warmup-floor", type=float, default=0.15,
                    help="share of warm-up batches once the task samples are in")
    ap.add_argument("--lookup-weight", type=float, default=0.0,
                    help="weight of each supervised attention of VT's lookups (lookup_attention.py); 0: off")
    ap.add_argument("--carry-head", default="1:1",
                    help="LAYER:HEAD that brings a statement's assigned name to its end (one of the heads "
                         "that bring it into a number's digits)")
    ap.add_argument("--lookup-head", default="4:5",
                    help="LAYER:HEAD that reads the statement a lookup needs (the number lookup's reader)")
    ap.add_argument("--copy-head", default="5:7",
                    help="LAYER:HEAD that attends to the looked-up name and writes it (the number lookup's)")
    ap.add_argument("--copy-chars", type=int, default=1,
                    help="characters of each looked-up name the copy head is pointed at, from the first")
    ap.add_argument("--relookup-head", default="",
                    help="LAYER:HEAD that reads the statement again from the name's first written character "
                         "(the number lookup's does it in layer 4 head 4); empty: not supervised")
    args = ap.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    task_index = {}
    sources = {"tasks": load_rows(args.train, task_index, args.copy_chars)}
    if args.warmup_data:
        sources["warmup"] = load_rows(args.warmup_data, task_index, args.copy_chars)
    task_names = sorted(task_index, key=task_index.get)
    # Completion loss summed per task between two log lines, on the GPU (read at log time only).
    task_loss = torch.zeros(len(task_names), device=device)
    task_tokens = torch.zeros(len(task_names), device=device)
    rows_per_bucket = {name: {b: len(r) for b, r in buckets.items()} for name, buckets in sources.items()}
    print(rows_per_bucket, f"loaded in {time.time() - t0:.1f}s", flush=True)

    config = model_config(BUCKETS[-1])
    if args.init:
        model = LlamaForCausalLM.from_pretrained(args.init).float()
    else:
        model = LlamaForCausalLM(config)
    model.to(device)
    params = sum(p.numel() for p in model.parameters())
    print(f"{params} parameters", flush=True)
    supervised = {}  # role: (layer, head, the layer's captured normed input)
    if args.lookup_weight > 0:
        roles = [("carry", args.carry_head), ("lookup", args.lookup_head), ("relookup", args.relookup_head),
                 ("copy", args.copy_head)]
        for role, spec in [(role, spec) for role, spec in roles if spec]:
            layer, head = (int(x) for x in spec.split(":"))
            error = lookup_attention.check_recomputed_attention(model, layer, head, device)
            print(f"{role} head {spec}: recomputed attention within {error:.2e} of the layer's", flush=True)
            if error > 1e-3:
                raise SystemExit("lookup_attention.py does not reproduce the layer's attention; not training")
            captured, _ = lookup_attention.capture_normed_input(model.model.layers[layer])
            supervised[role] = (layer, head, captured)
    # Mean attention mass where it is asked between two log lines, per role (and by number / by name).
    mass_keys = ["carry", "lookup_by_number", "lookup_by_name", "relookup_by_number", "relookup_by_name",
                 "copy_by_number", "copy_by_name"]
    lookup_mass = torch.zeros(len(mass_keys), device=device)
    lookup_count = torch.zeros(len(mass_keys), device=device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), fused=True)

    order = {(name, b): list(range(len(rows))) for name, buckets in sources.items() for b, rows in buckets.items()}
    cursor = {key: len(rows) for key, rows in order.items()}
    log = []
    start = time.time()
    deadline = start + args.minutes * 60
    step = 0
    last = min(args.steps, args.stop_step or args.steps)
    while step < last and time.time() < deadline:
        progress = max(step / args.steps, (time.time() - start) / (deadline - start))
        source = "warmup" if "warmup" in sources and random.random() < warmup_share(
            progress, args.warmup_alone, args.warmup_floor) else "tasks"
        buckets = sources[source]
        available = [b for b in BUCKETS if buckets[b]]
        if source == "tasks":
            weights = [bucket_mix(progress)[TASK_BUCKETS.index(b)] if b in TASK_BUCKETS else 0.2
                       for b in available]
        else:
            weights = [len(buckets[b]) for b in available]
        bucket = random.choices(available, weights)[0]
        key = (source, bucket)
        per_batch = max(1, min(len(order[key]), args.batch_tokens // bucket))
        if cursor[key] + per_batch > len(order[key]):
            random.shuffle(order[key])
            cursor[key] = 0
        rows = [buckets[bucket][i] for i in order[key][cursor[key]: cursor[key] + per_batch]]
        cursor[key] += per_batch
        length = max(len(row[0]) for row in rows)
        ids, w = make_batch(rows, length, device)
        lr = lr_at(step, progress, args.lr, args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=ids).logits
        loss_all = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                   ids[:, 1:].reshape(-1), reduction="none").view(ids.shape[0], -1)
        wt = w[:, :-1]
        loss = (loss_all * wt).sum() / wt.sum()
        for role, (layer, head, captured) in supervised.items():
            targets = lookup_attention.target_tensors([row[3][role] for row in rows], device)
            if targets is None:
                continue
            log_mass = lookup_attention.head_log_mass(model.model.layers[layer].self_attn, model.config,
                                                      captured["normed"], head, targets)
            loss = loss + args.lookup_weight * -log_mass.mean()
            kind = (torch.full_like(targets[0], 0) if role == "carry" else
                    torch.tensor([b for row in rows for b in row[3]["by_name"][role]], device=device)
                    + mass_keys.index(f"{role}_by_number"))
            lookup_mass.index_add_(0, kind, log_mass.detach().exp())
            lookup_count.index_add_(0, kind, torch.ones_like(log_mass))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        in_completion = (wt == COMPLETION_WEIGHT).float()
        row_tasks = torch.tensor([row[2] for row in rows], device=device)
        task_loss.index_add_(0, row_tasks, (loss_all.detach() * in_completion).sum(1))
        task_tokens.index_add_(0, row_tasks, in_completion.sum(1))
        if step % 50 == 0:
            completion = (loss_all * in_completion).sum() / in_completion.sum()
            per_task = {name: round((task_loss[i] / task_tokens[i]).item(), 3)
                        for i, name in enumerate(task_names) if task_tokens[i] > 0}
            task_loss.zero_()
            task_tokens.zero_()
            entry = {"step": step, "seconds": round(time.time() - start, 1), "lr": lr,
                     "source": source, "bucket": bucket, "loss": round(loss.item(), 4),
                     "completion_loss": round(completion.item(), 4),
                     "completion_loss_by_task": per_task}
            if args.lookup_weight > 0:
                entry["lookup_mass"] = {kind: round((lookup_mass[i] / lookup_count[i]).item(), 3)
                                        for i, kind in enumerate(mass_keys) if lookup_count[i] > 0}
                lookup_mass.zero_()
                lookup_count.zero_()
            log.append(entry)
            print(entry, flush=True)
        step += 1
    train_seconds = time.time() - start
    print(f"trained {step} steps in {train_seconds:.0f}s ({step / train_seconds:.2f} steps/s)", flush=True)

    scores = {}
    if args.eval:
        with open(args.eval) as f:
            held_out = [json.loads(line) for line in f]
        by_task = {}
        for s in held_out:
            by_task.setdefault(s["task"], []).append(s)
        for task, samples in by_task.items():
            outputs = greedy_eval(model, samples, device)
            exact = sum(o.strip() == traced_completion(s).strip() for o, s in zip(outputs, samples))
            scores[task] = {"exact_completion": exact / len(samples), "n": len(samples),
                            "example": outputs[0][:300]}
            print(task, scores[task], flush=True)

    model.half().save_pretrained(out, safe_serialization=True)
    char_tokenizer.write(out)
    (out / "training_log.json").write_text(json.dumps({
        "parameters": params, "steps": step, "train_seconds": round(train_seconds),
        "batch_tokens": args.batch_tokens, "lr": args.lr, "seed": args.seed,
        "warmup_alone": args.warmup_alone, "warmup_floor": args.warmup_floor,
        "lookup_weight": args.lookup_weight, "carry_head": args.carry_head, "lookup_head": args.lookup_head,
        "copy_head": args.copy_head, "copy_chars": args.copy_chars, "relookup_head": args.relookup_head,
        "completion_weight": COMPLETION_WEIGHT, "buckets": BUCKETS,
        "rows": rows_per_bucket, "gpu": torch.cuda.get_device_name(),
        "log": log, "held_out": scores}, indent=1))


if __name__ == "__main__":
    main()
