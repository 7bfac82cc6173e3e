#!/usr/bin/env bash
# reproduce_default_model.sh [--dry-run] OUT_DIR
# Trains public/models/tiny-tasks-4k again, every stage of tools/train/stages.json in order, each
# with the recipe (tools/train) of the commit that trained it and `--init` the stage before, and
# writes the last stage's model files and every stage's training log to OUT_DIR/model.
#
# Needs: a git checkout of this repository (the recipe commits come from its history), Linux with a
# CUDA GPU, Node.js 20 with npm and access to the npm registry (each recipe's `npm ci`), python3
# with torch (CUDA), transformers, safetensors and numpy. The stages trained 80 minutes together
# (their logs' train_seconds); with data generation, held-out checks and recipe builds about 95
# minutes on an H100 (README.md), and a few GB under OUT_DIR.
#
# For each recipe commit it checks the commit out in a git worktree, runs `npm ci` and that
# commit's tools/train/pack.sh, which builds dist-cli/tasks.mjs and copies the bundle and the Python
# files into OUT_DIR/recipes/COMMIT/ (the .gpu/ layout train_default_model.sh runs from, with `node`
# linked to this machine's node instead of the packed one), then removes the worktree. Stage N
# trains into OUT_DIR/stages/stageN/; a stage whose folder exists is skipped, so a failed run
# restarts where it stopped. --dry-run prints the commands without running them.
set -euo pipefail

dry_run=0
if [ "${1:-}" = "--dry-run" ]; then
  dry_run=1
  shift
fi
[ $# -eq 1 ] || { echo "usage: reproduce_default_model.sh [--dry-run] OUT_DIR" >&2; exit 2; }
repo="$(cd "$(dirname "$0")" && git rev-parse --show-toplevel)"
# Absolute: train_default_model.sh changes into its own folder before it reads --init.
out="$(realpath -m "$1")"

run() { # prints a command, then runs it unless --dry-run
  local line
  printf -v line '%q ' "$@"
  echo "${line% }"
  if [ "$dry_run" = 0 ]; then "$@"; fi
}

if [ "$dry_run" = 0 ]; then
  command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "reproduce_default_model.sh: node and npm are needed" >&2; exit 1; }
  python3 -c 'import numpy, safetensors, torch, transformers; assert torch.cuda.is_available()' || {
    echo "reproduce_default_model.sh: python3 needs torch (CUDA GPU), transformers, safetensors, numpy" >&2
    exit 1
  }
fi

# One line per stage, fields split by '|': stage, recipe commit, tasks left out, env assignments,
# train.py options (the last three space-separated; every value is checked to hold no spaces or
# shell characters).
stages_file="$repo/tools/train/stages.json"
manifest="$(node -e '
  const { stages } = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const plain = (v) => {
    if (!/^[\w.:\/=+-]+$/.test(v)) throw new Error(`stages.json: not a plain word: ${v}`);
    return v;
  };
  for (const s of stages) {
    const env = Object.entries(s.env).map(([k, v]) => plain(`${k}=${v}`));
    const without = (s.without_tasks ?? []).map(plain);
    const fields = [s.stage, plain(s.recipe), without.join(" "), env.join(" "), s.args.map(plain).join(" ")];
    console.log(fields.join("|"));
  }' "$stages_file")"

# Stands in for ../shared/gpu/pack.sh, which each recipe's pack.sh calls with the files to ship:
# here they are copied into the recipe's folder, and `node` is this machine's.
pack_shim="$out/recipes/shared/gpu/pack.sh"
if [ "$dry_run" = 0 ]; then
  mkdir -p "$(dirname "$pack_shim")"
  printf '%s\n' '#!/usr/bin/env bash' 'set -euo pipefail' 'cp -r "$@" "$RECIPE_BUNDLE/"' > "$pack_shim"
fi

# Commits this run has built or found, so that --dry-run (which builds nothing) prints each once.
declare -A recipe_ready=()
build_recipe() { # commit -> OUT_DIR/recipes/COMMIT with train_default_model.sh and its inputs
  local commit="$1"
  local bundle="$out/recipes/$commit"
  if [ -n "${recipe_ready[$commit]:-}" ]; then return; fi
  recipe_ready[$commit]=1
  if [ -f "$bundle/train_default_model.sh" ]; then
    echo "# recipe $commit: $bundle exists, kept"
    return
  fi
  local checkout="$out/recipes/$commit.checkout"
  echo "# recipe $commit: checkout, npm ci and its pack.sh, into $bundle"
  # --force: the checkout may still be registered from a run whose OUT_DIR was deleted since.
  if [ ! -d "$checkout" ]; then
    run git -C "$repo" worktree add --force --detach "$checkout" "$commit"
  fi
  # pack.sh builds in the checkout it is run from (git rev-parse --show-toplevel).
  run cd "$checkout"
  run npm ci --no-audit --no-fund
  run rm -rf "$bundle.partial"
  run mkdir -p "$bundle.partial"
  run env RECIPE_BUNDLE="$bundle.partial" SHARED_DIR="$out/recipes/shared" bash tools/train/pack.sh
  run ln -s "$(command -v node)" "$bundle.partial/node"
  run mv "$bundle.partial" "$bundle"
  run cd "$repo"
  # --force: the checkout holds its build outputs (node_modules, dist-cli).
  run git worktree remove --force "$checkout"
}

previous=""
while IFS='|' read -r stage commit without_tasks env_line args_line; do
  read -r -a env_pairs <<< "$env_line"
  read -r -a train_args <<< "$args_line"
  done_dir="$out/stages/stage$stage"
  if [ -d "$done_dir" ]; then
    echo "# stage $stage: $done_dir exists, skipped"
  else
    build_recipe "$commit"
    init=()
    if [ -n "$previous" ]; then init=(--init "$out/stages/stage$previous/model"); fi
    echo "# stage $stage (recipe $commit)${previous:+, from stage $previous}"
    train_script="$out/recipes/$commit/train_default_model.sh"
    if [ -n "$without_tasks" ]; then
      # The original run had no samples of these tasks (its log's rows are exactly the other
      # tasks'), so neither has the replay: the recipe's script without their `generate` lines.
      echo "# stage $stage leaves out $without_tasks, as the original run did"
      run cp "$train_script" "${train_script%.sh}.stage$stage.sh"
      train_script="${train_script%.sh}.stage$stage.sh"
      run sed -E -i "/^generate (${without_tasks// /|}) /d" "$train_script"
    fi
    run rm -rf "$done_dir.partial" "$out/work"
    run env TRAIN_WORK="$out/work" "${env_pairs[@]}" bash "$train_script" \
      "$done_dir.partial" "${init[@]}" "${train_args[@]}"
    run mv "$done_dir.partial" "$done_dir"
    run rm -rf "$out/work"
  fi
  previous="$stage"
done <<< "$manifest"

echo "# the model: $out/model"
run mkdir -p "$out/model"
for file in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do
  run cp "$out/stages/stage$previous/model/$file" "$out/model/"
done
while IFS='|' read -r stage _; do
  run cp "$out/stages/stage$stage/model/training_log.json" "$out/model/training_log_stage$stage.json"
done <<< "$manifest"
echo "reproduce_default_model.sh: the model is in $out/model (compare with public/models/tiny-tasks-4k)"
