#!/usr/bin/env bash
# Prepares .gpu/ for training the embedded default model on the GPU machine: the task generator
# bundle (dist-cli/tasks.mjs, the same generators as the app), the sweep bundle that scores the
# trained model with our own forward pass (dist-cli/sweep.mjs, for its card) and the Python recipe,
# beside what ../shared/gpu/pack.sh adds (node). Then, with the device tool: carry [".gpu"], command:
#   bash .gpu/setup.sh && bash .gpu/train_default_model.sh $OUT
# and copy $OUT/model/* into public/models/tiny-tasks-4k/.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
npx vite build --config vite.cli.config.ts --logLevel warn
shared="${SHARED_DIR:-../shared}"
bash "$shared/gpu/pack.sh" dist-cli/tasks.mjs dist-cli/assets tools/train/char_tokenizer.py tools/train/train.py \
  tools/train/curriculum.py tools/train/grow.py tools/train/probe_vt.py tools/train/vt_answers.py tools/train/lookup_attention.py dist-cli/sweep.mjs src/tasks/data/story.ts tools/train/train_default_model.sh
