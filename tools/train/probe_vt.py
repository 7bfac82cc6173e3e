"""Where does VT's chain break? Teacher-forced probes of a trained model (GPU machine, PyTorch).

For every name of the traced answer (`<answer>\n12345 NAME1 NAME2 ...`) it records whether the model's
most likely next character is the name's first one (the lookup; the rest of a name is a copy once
it starts) and, on the app's own ruler_vt samples, where each head looks from the character before
it: the share of its attention on the statement that assigns the name, and whether that statement
is the one it attends most. Synthetic VT prompts (curriculum.py's short form) vary one thing at a
time: the number of chains with no filler, or the filler around eight chains of four hops.

    python3 probe_vt.py --model DIR --samples ruler_vt.jsonl --out probe.json
"""

import argparse
import json
import random

import torch
from transformers import LlamaForCausalLM

import char_tokenizer
from curriculum import FILLER, KV_ALPHABET, UPPER, distinct_names, prompt
from vt_answers import lookups, statements, traced_completion


def synthetic(rng: random.Random, chains: int, hops: int, fillers: int) -> dict:
    """curriculum.vt's prompt with the chain count, hop count and filler sentences fixed."""
    names = distinct_names(rng, chains * (hops + 1))
    values = rng.sample(range(10000, 100000), chains)
    pending = []
    for c in range(chains):
        chain = names[c * (hops + 1):(c + 1) * (hops + 1)]
        pending.append([f"VAR {chain[0]} = {values[c]}."] +
                       [f"VAR {v} = VAR {chain[i]}." for i, v in enumerate(chain[1:])])
    slots = [c for c in range(chains) for _ in range(hops + 1)] + [-1] * fillers
    rng.shuffle(slots)
    items = [pending[s].pop(0) if s >= 0 else rng.choice(FILLER) for s in slots]
    value = values[0]
    question = (f"Which variables resolve to the value {value}? A variable resolves to {value} if it is "
                f"assigned {value} directly, or assigned another variable that resolves to {value}.")
    return {"task": "warmup_vt", "answer": names[:hops + 1],
            "prompt": prompt("Track the variable assignments.", "question", question, " ".join(items)),
            "completion": "<answer>\n" + " ".join(names[:hops + 1]) + "\n</answer>"}


def reverse_sample(rng: random.Random, numeric: bool, count: int = 8, asked: int = 3) -> tuple:
    """curriculum.reverse with its values all numbers or all names, and where each answer name
    starts in the completion."""
    names = distinct_names(rng, 2 * count)
    values = ([str(v) for v in rng.sample(range(10000, 100000), count)] if numeric
              else ["VAR " + n for n in names[count:]])
    lines = [f"VAR {n} = {v}." for n, v in zip(names, values)]
    picked = rng.sample(range(count), asked)
    question = "Which variables are assigned " + ", ".join(values[i] for i in picked) + "?"
    answer = " ".join(f"{values[i].removeprefix('VAR ')} {names[i]}" for i in picked)
    completion = "<answer>\n" + answer + "\n</answer>"
    sample = {"prompt": prompt("Name the variable of each value.", "question", question, " ".join(lines)),
              "completion": completion}
    targets, at = [], 0
    for i in picked:
        at = completion.index(" " + names[i], completion.index(values[i].removeprefix("VAR "), at)) + 1
        targets.append(at)
    return sample, targets


def copy_sample(rng: random.Random, upper: bool, count: int = 8) -> tuple:
    """curriculum.copy's shuffled repeat of lowercase-and-digit or uppercase keys of five characters,
    and where the second character of each repeated key stands (the first is a free choice)."""
    alphabet = UPPER if upper else KV_ALPHABET
    keys = ["".join(rng.choices(alphabet, k=5)) for _ in range(count)]
    again = rng.sample(keys, count)
    completion = "\n".join(again)
    return ({"prompt": "Repeat the keys.\n" + "\n".join(keys) + "\nAgain:\n", "completion": completion},
            [6 * k + 1 for k in range(count)])


@torch.no_grad()
def accuracy_at(model, sample: dict, targets: list) -> float:
    """Share of the completion characters at `targets` that the model predicts, teacher-forced."""
    prompt_ids = char_tokenizer.encode(sample["prompt"])
    ids = torch.tensor([prompt_ids + char_tokenizer.encode(sample["completion"])[1:]], device="cuda")
    predicted = model(input_ids=ids).logits[0].argmax(-1)
    return sum(bool(predicted[len(prompt_ids) + t - 1] == ids[0, len(prompt_ids) + t]) for t in targets) / len(targets)


@torch.no_grad()
def probe(model, sample: dict, attention: bool) -> dict:
    text = traced_completion(sample)
    prompt_ids = char_tokenizer.encode(sample["prompt"])
    completion_ids = char_tokenizer.encode(text)[1:]
    ids = torch.tensor([prompt_ids + completion_ids], device="cuda")
    out = model(input_ids=ids, output_attentions=attention)
    predicted = out.logits[0].argmax(-1)
    # Each answer name's first token: the token after its lookup's query.
    starts = [query + 1 for query, *_ in lookups(sample["prompt"], text)]
    first = [bool(predicted[s - 1] == ids[0, s]) for s in starts]
    whole = [bool((predicted[s - 1:s + 4] == ids[0, s:s + 5]).all()) for s in starts]
    result = {"first": first, "whole": whole}
    if attention:
        spans = statements(sample["prompt"])
        owner = torch.full((ids.shape[1],), -1, dtype=torch.long, device="cuda")
        for i, (a, b, _, _) in enumerate(spans):
            owner[a:b] = i
        right_mass, right_top = [], []
        for s, name in zip(starts, sample["answer"]):
            target = next(i for i, (_, _, n, _) in enumerate(spans) if n == name)
            rows = torch.stack([layer[0, :, s - 1] for layer in out.attentions])  # layer, head, key
            inside = owner >= 0
            per_statement = torch.zeros(rows.shape[0], rows.shape[1], len(spans), device="cuda")
            per_statement.index_add_(2, owner[inside], rows[:, :, inside])
            right_mass.append(per_statement[:, :, target].tolist())
            right_top.append((per_statement.argmax(-1) == target).tolist())
        result["right_mass"] = right_mass
        result["right_top"] = right_top
    return result


def summarise(results: list, hops: int) -> dict:
    n = len(results)
    summary = {
        "n": n,
        "first_char_right_by_hop": [round(sum(r["first"][k] for r in results) / n, 3) for k in range(hops + 1)],
        "name_right_by_hop": [round(sum(r["whole"][k] for r in results) / n, 3) for k in range(hops + 1)],
    }
    if "right_mass" in results[0]:
        layers = len(results[0]["right_mass"][0])
        heads = len(results[0]["right_mass"][0][0])
        for key in ("right_mass", "right_top"):
            summary[f"{key}_later_hops"] = [
                [round(sum(float(r[key][k][l][h]) for r in results for k in range(1, hops + 1)) / (n * hops), 3)
                 for h in range(heads)] for l in range(layers)]
            summary[f"{key}_first_hop"] = [
                [round(sum(float(r[key][0][l][h]) for r in results) / n, 3) for h in range(heads)]
                for l in range(layers)]
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--samples", required=True, help="ruler_vt JSONL from tasks.mjs")
    ap.add_argument("--synthetic", type=int, default=40, help="synthetic prompts per setting")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model = LlamaForCausalLM.from_pretrained(args.model, attn_implementation="eager").float().cuda().eval()
    report = {"ruler_vt": {}, "chains_no_filler": {}, "filler_8_chains": {}}
    by_length = {}
    with open(args.samples) as f:
        for line in f:
            sample = json.loads(line)
            by_length.setdefault(sample["targetTokens"], []).append(sample)
    for length, samples in sorted(by_length.items()):
        report["ruler_vt"][length] = summarise([probe(model, s, True) for s in samples], 4)
    rng = random.Random(5)
    for chains in (1, 2, 4, 8):
        results = [probe(model, synthetic(rng, chains, 4, 0), False) for _ in range(args.synthetic)]
        report["chains_no_filler"][chains] = summarise(results, 4)
    for fillers in (0, 10, 25, 50, 80, 120):
        results = [probe(model, synthetic(rng, 8, 4, fillers), False) for _ in range(args.synthetic)]
        report["filler_8_chains"][fillers] = summarise(results, 4)
    for numeric in (True, False):
        key = "numbers" if numeric else "names"
        report[f"reverse_lookup_{key}"] = round(
            sum(accuracy_at(model, *reverse_sample(rng, numeric)) for _ in range(args.synthetic)) / args.synthetic, 3)
    for upper in (False, True):
        key = "uppercase" if upper else "lowercase_digits"
        report[f"copy_shuffled_{key}"] = round(
            sum(accuracy_at(model, *copy_sample(rng, upper)) for _ in range(args.synthetic)) / args.synthetic, 3)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    for section, rows in report.items():
        if not isinstance(rows, dict):
            print(section, "first character right", rows)
            continue
        for key, row in rows.items():
            print(section, key, "first char", row["first_char_right_by_hop"], "name", row["name_right_by_hop"])


if __name__ == "__main__":
    main()
