"""PyTorch's FlexAttention on the block-sparse rows of `npm run bench` (section sparse), same GPU.

Run on the GPU machine (see tools/gpu_bench.sh):  python3 torch_sparse_bench.py --json torch_sparse.json
(torch_attention_bench.py beside it: its timer is shared.)
The masks are the benchmark's own: 64 x 64 blocks; each query block keeps its diagonal block, block 0
and, spread evenly, enough others for (1 - s) of its causal blocks (src/cli/bench.ts evenBlockMask),
causal inside the diagonal block; and sliding window + 4 sinks with window (1 - sqrt(s)) L. Dense is
FlexAttention's causal mask. 32 heads over 8 KV heads, d 128, fp32 (TF32 off) and fp16; CUDA events
after a warm-up (the first call compiles). "s counted" is 1 - kept causal blocks / causal blocks, as
our kernels count.
"""
import argparse
import json
import math

import torch
import torch._dynamo
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from torch_attention_bench import time_ms

HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128
BLOCK = 64
SPARSITIES = [0.5, 0.8, 0.9, 0.95]


def js_round(x):
    """Math.round of JavaScript (halves up), so the masks match the benchmark's."""
    return math.floor(x + 0.5)


def even_blocks(num_blocks, s):
    """kept[qb, kb]: the benchmark's even mask (evenBlockMask in src/cli/bench.ts)."""
    kept = torch.zeros(num_blocks, num_blocks, dtype=torch.bool)
    for qb in range(num_blocks):
        keep = max(min(2, qb + 1), js_round((1 - s) * (qb + 1)))
        picked = {qb, 0}
        i = 0
        while len(picked) < keep:
            picked.add((i * (qb + 1)) // keep)
            i += 1
        kept[qb, list(picked)] = True
    return kept


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--lengths", default="8192,16384")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    # Each mask_mod and dtype compiles its own kernel; the default limit (8) would fall back to eager.
    torch._dynamo.config.cache_size_limit = 256
    torch._dynamo.config.accumulated_cache_size_limit = 1024
    compiled = torch.compile(flex_attention, dynamic=False)

    def run_flex(q, k, v, block_mask):
        try:
            return time_ms(lambda: compiled(q, k, v, block_mask=block_mask, enable_gqa=True), 10)
        except Exception as first:  # noqa: BLE001 - some versions need kernel tiles that divide 64-row blocks
            print(f"default tiles failed ({type(first).__name__}); retrying with 64 x 64 tiles", flush=True)
            options = {"BLOCK_M": 64, "BLOCK_N": 64}
            return time_ms(lambda: compiled(q, k, v, block_mask=block_mask, enable_gqa=True,
                                            kernel_options=options), 10)
    rows = []
    for L in [int(x) for x in args.lengths.split(",")]:
        num_blocks = L // BLOCK
        causal_blocks = num_blocks * (num_blocks + 1) // 2

        def causal(b, h, q, kv):
            return q >= kv

        masks = [("dense (causal)", None, create_block_mask(causal, None, None, L, L, BLOCK_SIZE=BLOCK))]
        for s in SPARSITIES:
            kept = even_blocks(num_blocks, s).cuda()

            def even(b, h, q, kv, kept=kept):
                return (q >= kv) & kept[q // BLOCK, kv // BLOCK]

            masks.append((f"block-sparse, even (s {s})", s, create_block_mask(even, None, None, L, L, BLOCK_SIZE=BLOCK)))
        for s in SPARSITIES:
            window = max(1, js_round((1 - math.sqrt(s)) * L))

            def sliding(b, h, q, kv, window=window):
                return (q >= kv) & ((q - kv < window) | (kv < 4))

            masks.append((f"sliding window {window} + 4 sinks (s {s})", s,
                          create_block_mask(sliding, None, None, L, L, BLOCK_SIZE=BLOCK)))
        for dtype in (torch.float32, torch.float16):
            q = torch.randn(1, HEADS, L, HEAD_DIM, device="cuda", dtype=dtype)
            k = torch.randn(1, KV_HEADS, L, HEAD_DIM, device="cuda", dtype=dtype)
            v = torch.randn_like(k)
            dense_ms = None
            for label, s, block_mask in masks:
                try:
                    ms = run_flex(q, k, v, block_mask)
                except Exception as error:  # noqa: BLE001 - one failing mask loses its row, not the run
                    print(f"{label}, L {L}, {dtype}: failed: {error}", flush=True)
                    continue
                if s is None:
                    dense_ms = ms
                # The masks are the same for every head (H None): counts of one head.
                full = block_mask.full_kv_num_blocks
                kept_blocks = int(block_mask.kv_num_blocks.sum()) + (int(full.sum()) if full is not None else 0)
                row = {"kernel": f"torch flex_attention, {label}", "length": L, "dtype": str(dtype),
                       "targetSparsity": s, "measuredSparsity": 1 - kept_blocks / causal_blocks,
                       "ms": ms, "speedup": dense_ms / ms if dense_ms else None}
                rows.append(row)
                print(json.dumps(row), flush=True)
            del q, k, v
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
