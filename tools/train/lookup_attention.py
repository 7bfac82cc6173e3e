"""Supervised attention for the lookups of VT and its warm-ups (train.py --lookup-weight).

Every name of a VT answer (and of curriculum.py's reverse lookups) is found by looking back for the
statement that assigns it: `VAR NAME = 12345.` for the first, `VAR NAME = VAR PREVIOUS.` for each
later hop. The answer loss alone taught the model the lookup by number but not the lookup by name
(tools/train/README.md, session 16: no head put more than 0.05 of its weight on the right statement
for a later hop). What the number lookup does in the stage 7 weights (measured by attention and
by zeroing heads): early heads (layer 0 head 0, layer 1 head 1) copy the assigned name's first
character into the digits' positions; layer 4 head 5 reads it there from the answer; layer 5 head 7
then attends to that character itself in the statement and writes it (zeroing that head alone
breaks the number lookup). Nothing copies the name into a name's positions.

So three heads (four with --relookup-head) are supervised, each by -log of the softmax mass it puts where that circuit needs it:
- carry: at a statement's last two tokens (the assigned value's last character and the period,
  which have seen all of it), onto the assigned name's first character;
- lookup: at the character before each looked-up name of the answer, onto those last two tokens of
  the statement that assigns it;
- copy: at the same query, onto the assigned name's first character of that statement; with
  --copy-chars N, also from each of the name's first N - 1 written characters, onto the statement's
  next character of the name;
- relookup (--relookup-head, from session 20): at the name's first written character, onto the
  statement's last two tokens again. The lookup brings back the name's first character only; the
  model then copied on from the characters written so far, and took any name that starts alike (on
  the card, the first wrong name of 25 of stage 18's 33 failed VT samples had the first character
  right). The number lookup already reads its statement again there (layer 4 head 4) and gets
  whole names right.
The answer loss still has to learn what the heads' values carry. The targets come from
vt_answers.supervision_targets.

The heads' queries and keys are recomputed from each layer's normed input with the layer's own
projections and rotary embedding; `check_recomputed_attention` compares that recomputation with the
layer's output before training starts.
"""

import torch
import torch.nn.functional as F


def target_tensors(rows: list, device: str) -> tuple:
    """Per-row target lists -> (row, slot in its row, query, span start, span end) tensors, or None."""
    flat = [(r, slot, *target) for r, targets in enumerate(rows) for slot, target in enumerate(targets)]
    return torch.tensor(flat, device=device).T if flat else None


def rotate(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Llama's rotary embedding (rotate-half convention) of x [..., n, d] at positions [n]."""
    d = x.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    angles = positions.float()[:, None] * inv_freq[None, :]
    both = torch.cat([angles, angles], -1)
    cos, sin = both.cos(), both.sin()
    half = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-half[1], half[0]], -1) * sin


def head_queries_keys(attn, config, normed: torch.Tensor, head: int):
    """One query head's q [B, L, d] and the k [B, L, d] of its KV head, rotated, from the layer's
    normed input [B, L, hidden]."""
    d = config.head_dim
    kv_head = head // (config.num_attention_heads // config.num_key_value_heads)
    positions = torch.arange(normed.shape[1], device=normed.device)
    q = attn.q_proj(normed)[..., head * d:(head + 1) * d].float()
    k = attn.k_proj(normed)[..., kv_head * d:(kv_head + 1) * d].float()
    theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta") or config.rope_theta
    return rotate(q, positions, theta), rotate(k, positions, theta)


def head_log_mass(attn, config, normed: torch.Tensor, head: int, targets: torch.Tensor) -> torch.Tensor:
    """log of the attention mass that `head` puts, from each target's query token of its row, on the
    target's span (causal softmax over the keys up to the query); `targets` from target_tensors."""
    rows, slots, queries, starts, ends = targets
    used, row_of = torch.unique(rows, return_inverse=True)
    q, k = head_queries_keys(attn, config, normed[used], head)
    picked = q.new_zeros(len(used), int(slots.max()) + 1, q.shape[-1])
    picked[row_of, slots] = q[row_of, queries]
    scores = (picked @ k.transpose(1, 2))[row_of, slots] * config.head_dim ** -0.5  # [n, L]
    keys = torch.arange(k.shape[1], device=k.device)[None, :]
    log_p = F.log_softmax(scores.masked_fill(keys > queries[:, None], float("-inf")), -1)
    inside = (keys >= starts[:, None]) & (keys < ends[:, None])
    return torch.logsumexp(log_p.masked_fill(~inside, float("-inf")), -1)


def capture_normed_input(layer) -> tuple:
    """A dict that holds the layer's normed attention input of the latest forward pass under
    "normed", and the hook's handle."""
    store = {}
    handle = layer.input_layernorm.register_forward_hook(lambda _m, _i, out: store.__setitem__("normed", out))
    return store, handle


@torch.no_grad()
def check_recomputed_attention(model, layer_index: int, head: int, device: str) -> float:
    """Largest difference between `head`'s attention output computed here and the layer's own, on
    a random sequence in f32; train.py refuses to start when it is not small."""
    layer = model.model.layers[layer_index]
    config = model.config
    d = config.head_dim
    kv_head = head // (config.num_attention_heads // config.num_key_value_heads)
    seen, normed_hook = capture_normed_input(layer)
    hooks = [normed_hook,
             layer.self_attn.o_proj.register_forward_hook(lambda _m, inp, _o: seen.__setitem__("heads", inp[0]))]
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # TF32's rounding would hide a real mismatch
    try:
        model(input_ids=torch.randint(4, config.vocab_size, (1, 96), device=device))
        q, k = head_queries_keys(layer.self_attn, config, seen["normed"], head)
        v = layer.self_attn.v_proj(seen["normed"])[..., kv_head * d:(kv_head + 1) * d].float()
        scores = q[0] @ k[0].T * d ** -0.5
        causal = torch.ones_like(scores, dtype=torch.bool).tril()
        mine = F.softmax(scores.masked_fill(~causal, float("-inf")), -1) @ v[0]
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        for h in hooks:
            h.remove()
    theirs = seen["heads"][0, :, head * d:(head + 1) * d].float()
    return (mine - theirs).abs().max().item()
