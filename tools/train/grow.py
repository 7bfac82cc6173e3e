"""Deepens a trained model without changing its function: after each layer listed in --after, a
copy of that layer is inserted with its attention output and MLP down projections zeroed, so the
new layer adds nothing to the residual stream until training moves those weights. The tokenizer
files are copied beside the weights, so the folder loads as the original does (train.py --init).

    python3 grow.py --init MODEL --out DEEPER --after 2,5
"""
import argparse
import copy
import shutil
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--init", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--after", default="2,5")
args = ap.parse_args()
model = LlamaForCausalLM.from_pretrained(args.init).float()
after = {int(x) for x in args.after.split(",")}
layers = []
for i, layer in enumerate(model.model.layers):
    layers.append(layer)
    if i in after:
        new = copy.deepcopy(layer)
        with torch.no_grad():
            new.self_attn.o_proj.weight.zero_()
            new.mlp.down_proj.weight.zero_()
        layers.append(new)
for i, layer in enumerate(layers):
    layer.self_attn.layer_idx = i
model.model.layers = torch.nn.ModuleList(layers)
model.config.num_hidden_layers = len(layers)
if hasattr(model.config, "layer_types") and model.config.layer_types is not None:
    model.config.layer_types = [model.config.layer_types[0]] * len(layers)
ids = torch.randint(3, 100, (1, 64))
base = LlamaForCausalLM.from_pretrained(args.init).float()
with torch.no_grad():
    diff = (model(ids).logits - base(ids).logits).abs().max().item()
print(f"grow.py: {len(base.model.layers)} -> {len(layers)} layers, "
      f"{sum(p.numel() for p in model.parameters())} parameters, max logit change {diff:.2e}")
model.save_pretrained(args.out, safe_serialization=True)
for name in ("tokenizer.json", "tokenizer_config.json"):
    if (Path(args.init) / name).exists():
        shutil.copy(Path(args.init) / name, Path(args.out) / name)
