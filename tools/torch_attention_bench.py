"""PyTorch's SDPA on the shapes of `npm run bench`, on the same GPU, for the comparison the issues ask.

Run on the GPU machine (see tools/gpu_bench.sh):  python3 torch_attention_bench.py --json torch.json
Times with CUDA events after a warm-up; counts FLOPs and bytes exactly as src/cli/bench.ts does.
"""
import argparse
import json

import torch
import torch.nn.functional as F

SHAPES = [("32h/8kv d128", 32, 8, 128), ("12h/12kv d64", 12, 12, 64)]
PREFILL_LENGTHS = [1024, 4096, 8192, 16384]
DECODE_LENGTHS = [4096, 16384, 32768, 65536]


def time_ms(fn, repeats=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    src = torch.empty(512 << 20, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src))
    copy = 2 * src.numel() / (ms * 1e6)
    rows.append({"kernel": "torch copy", "length": src.numel(), "ms": ms, "gbPerSecond": copy})
    for name, h, hkv, d in SHAPES:
        for dtype in (torch.float32, torch.float16):
            for L in PREFILL_LENGTHS:
                q = torch.randn(1, h, L, d, device="cuda", dtype=dtype)
                k = torch.randn(1, hkv, L, d, device="cuda", dtype=dtype)
                v = torch.randn_like(k)
                ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=hkv != h), 5)
                rows.append({"kernel": "torch sdpa prefill", "shape": name, "length": L, "dtype": str(dtype),
                             "ms": ms, "tflops": 2 * L * L * h * d / (ms * 1e9)})
                del q, k, v
            for L in DECODE_LENGTHS:
                q = torch.randn(1, h, 1, d, device="cuda", dtype=dtype)
                k = torch.randn(1, hkv, L, d, device="cuda", dtype=dtype)
                v = torch.randn_like(k)
                ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=hkv != h))
                gbs = 2 * L * hkv * d * q.element_size() / (ms * 1e6)
                rows.append({"kernel": "torch sdpa decode", "shape": name, "length": L, "dtype": str(dtype),
                             "ms": ms, "gbPerSecond": gbs, "shareOfCopy": gbs / copy})
    for r in rows:
        print(json.dumps(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
