"""Which character of VT's looked-up names does a model get wrong? Teacher-forced, on the CPU.

A NumPy forward pass of the model (Llama, f16 safetensors, as train.py writes it) over each VT
sample's prompt and traced completion (vt_answers.traced_completion); for every looked-up name it
records whether the most likely next token is right at each of the name's characters, given the
gold characters before it. No GPU or PyTorch needed: about 8 s a 4K sample on one core.

    python3 teacher_forced_vt.py --model DIR --samples ruler_vt.jsonl [--out errors.json]

Prints, for lookups by number and by name, how many names were wrong at each character position.
"""

import argparse
import json
import struct

import numpy as np

import char_tokenizer
from vt_answers import NAME_LENGTH, lookups, traced_completion


def load_safetensors(path: str) -> dict:
    data = open(path, "rb").read()
    size = struct.unpack("<Q", data[:8])[0]
    header, base, tensors = json.loads(data[8:8 + size]), 8 + size, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in ("F16", "F32"):
            raise ValueError(f"{name}: dtype {info['dtype']} is not read here")
        start, end = info["data_offsets"]
        dtype = np.float16 if info["dtype"] == "F16" else np.float32
        tensors[name] = np.frombuffer(data[base + start:base + end], dtype=dtype).reshape(info["shape"]).astype(np.float32)
    return tensors


class Llama:
    def __init__(self, folder: str):
        self.w = load_safetensors(f"{folder}/model.safetensors")
        config = json.load(open(f"{folder}/config.json"))
        self.heads, self.kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
        self.head_dim, self.layers = config["head_dim"], config["num_hidden_layers"]
        self.eps = config["rms_norm_eps"]
        self.theta = (config.get("rope_parameters") or {}).get("rope_theta") or config["rope_theta"]
        self.unembed = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])

    def norm(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * weight

    def rotate(self, x: np.ndarray) -> np.ndarray:
        """Rotary embedding, rotate-half convention, of x [heads, L, d]."""
        d = self.head_dim
        angles = np.arange(x.shape[1])[:, None] * (1.0 / self.theta ** (np.arange(0, d, 2) / d))[None]
        angles = np.concatenate([angles, angles], -1)
        return x * np.cos(angles) + np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1) * np.sin(angles)

    def logits(self, ids: np.ndarray) -> np.ndarray:
        w, n, d = self.w, len(ids), self.head_dim
        x = w["model.embed_tokens.weight"][ids]
        causal = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
        for layer in range(self.layers):
            p = f"model.layers.{layer}."
            h = self.norm(x, w[p + "input_layernorm.weight"])
            q = self.rotate((h @ w[p + "self_attn.q_proj.weight"].T).reshape(n, self.heads, d).transpose(1, 0, 2))
            k = self.rotate((h @ w[p + "self_attn.k_proj.weight"].T).reshape(n, self.kv_heads, d).transpose(1, 0, 2))
            v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(n, self.kv_heads, d).transpose(1, 0, 2)
            out = np.empty((n, self.heads, d), np.float32)
            for head in range(self.heads):
                kv = head // (self.heads // self.kv_heads)
                s = q[head] @ k[kv].T / np.sqrt(d) + causal
                s = np.exp(s - s.max(-1, keepdims=True))
                out[:, head] = (s / s.sum(-1, keepdims=True)) @ v[kv]
            x = x + out.reshape(n, -1) @ w[p + "self_attn.o_proj.weight"].T
            h = self.norm(x, w[p + "post_attention_layernorm.weight"])
            gate = h @ w[p + "mlp.gate_proj.weight"].T
            x = x + (gate / (1 + np.exp(-gate)) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        return self.norm(x, w["model.norm.weight"]) @ self.unembed.T


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--samples", required=True, help="JSONL of ruler_vt samples (tasks.mjs)")
    ap.add_argument("--out", help="JSON file: each sample's per-name, per-character right (1) or wrong (0)")
    args = ap.parse_args()
    model = Llama(args.model)
    wrong = {"by_number": [0] * NAME_LENGTH, "by_name": [0] * NAME_LENGTH}
    names = {"by_number": 0, "by_name": 0}
    rows = []
    for line in open(args.samples):
        sample = json.loads(line)
        completion = traced_completion(sample)
        ids = np.array(char_tokenizer.encode(sample["prompt"]) + char_tokenizer.encode(completion)[1:])
        predicted = model.logits(ids).argmax(-1)
        row = []
        for query, _, _, by_name in lookups(sample["prompt"], completion):
            kind = "by_name" if by_name else "by_number"
            right = [int(predicted[query + j] == ids[query + j + 1]) for j in range(NAME_LENGTH)]
            names[kind] += 1
            wrong[kind] = [a + 1 - b for a, b in zip(wrong[kind], right)]
            row.append({"by_name": by_name, "right": right})
        rows.append({"seed": sample["seed"], "names": row})
        print(sample["seed"], [r["right"] for r in row], flush=True)
    for kind in names:
        print(f"lookups {kind.replace('_', ' ')}: {names[kind]} names, wrong at character 1..{NAME_LENGTH}: {wrong[kind]}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"model": args.model, "names": names, "wrong": wrong, "samples": rows}, f, indent=1)


if __name__ == "__main__":
    main()
