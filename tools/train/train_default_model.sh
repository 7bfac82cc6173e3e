#!/usr/bin/env bash
# The embedded default model, from nothing: writes the character tokenizer, generates the training
# mixture of the six tasks with the app's own generators (seeds 0..N-1 of each task and length;
# held-out samples use seeds from 1000000) and the short warm-up samples of curriculum.py, trains
# (train.py, seeded) and writes the model folder to $1/model; TRAIN_HELD_OUT held-out samples of
# each task at 4096 tokens (default 4, 0 for none) are checked at the end. Runs on the GPU machine
# from .gpu/ (see pack.sh). Training data seeds start at $TRAIN_DATA_SEED (default 0), so a
# continued run (train.py --init) sees fresh samples.
set -euo pipefail
out="${1:?usage: train_default_model.sh OUT_DIR [train.py options]}"
shift
here="$(cd "$(dirname "$0")" && pwd)"
work="${TRAIN_WORK:-/tmp/train-default-model}"
node="$here/node"
mkdir -p "$work/data" "$work/warmup" "$out"
cd "$here"
python3 char_tokenizer.py "$work/tokenizer"

generate() { # task lengths samples-per-length
  "$node" tasks.mjs --tokenizer "$work/tokenizer" --tasks "$1" --lengths "$2" --samples "$3" \
    --seed "${TRAIN_DATA_SEED:-0}" --out "$work/data/$1.jsonl"
}
# Story Retrieval starts at 3328: below it, its instructions leave no room for one question.
pids=()
generate ruler_niah 2048,2560,3072,3584,4096 3000 & pids+=($!)
generate ruler_vt 2560,3072,3584,4096 3000 & pids+=($!)
generate ruler_cwe 2560,3072,3584,4096 1000 & pids+=($!)
generate story_retrieval 3328,3584,3840,4096 3000 & pids+=($!)
generate story_multihop 3072,3584,4096 1500 & pids+=($!)
generate story_filtering 3072,3584,4096 1200 & pids+=($!)
for shard in 0 1 2 3; do
  python3 curriculum.py --samples 12500 --seed $((${TRAIN_DATA_SEED:-0} + shard)) \
    --out "$work/warmup/$shard.jsonl" & pids+=($!)
done
held_out=()
if [ "${TRAIN_HELD_OUT:-4}" -gt 0 ]; then
  "$node" tasks.mjs --tokenizer "$work/tokenizer" --lengths 4096 --samples "${TRAIN_HELD_OUT:-4}" --seed 1000000 \
    --out "$work/held_out.jsonl" & pids+=($!)
  held_out=(--eval "$work/held_out.jsonl")
fi
# A generator that fails must stop the run: a task missing from the mixture is not learned.
for pid in "${pids[@]}"; do
  wait "$pid" || { echo "train_default_model.sh: generating the training data failed" >&2; exit 1; }
done

PYTHONUNBUFFERED=1 python3 train.py --train "$work/data/*.jsonl" --warmup-data "$work/warmup/*.jsonl" "${held_out[@]}" \
  --out "$out/model" "$@" 2>&1 | tee "$out/train.log"
