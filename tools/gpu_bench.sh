#!/usr/bin/env bash
# Prepares .gpu/ for the GPU machine (see ../shared/docs/GPU.md): the benchmark bundle, PyTorch's
# comparison scripts, and what pack.sh adds (node, Dawn, Vulkan loader). Then, with the device tool:
#   carry [".gpu"], command:
#   bash .gpu/setup.sh && .gpu/node .gpu/bench.mjs --json $OUT/bench.json \
#     && python3 .gpu/torch_attention_bench.py --json $OUT/torch.json \
#     && python3 .gpu/torch_model_bench.py --json $OUT/torch_model.json \
#     && python3 .gpu/torch_sparse_bench.py --json $OUT/torch_sparse.json
# (--quick for a short run; --only model,blasst,... for sections; --lengths 8192,65536 for the
# sparse and BLASST rows.)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
npx vite build --config vite.cli.config.ts --logLevel warn
shared="${SHARED_DIR:-../shared}"
bash "$shared/gpu/pack.sh" dist-cli/bench.mjs dist-cli/assets tools/torch_attention_bench.py \
  tools/torch_model_bench.py tools/torch_sparse_bench.py
