#!/usr/bin/env bash
# Side by side at equal steps: examples/char_lm (Flex) and benches/quality/torch_lm.py on the
# same corpus, configuration, split and steps, one seed after another. Each seed runs ours and
# PyTorch's at the same time, one thread each, so the 2 cores are shared evenly and the wall times
# compare like for like. Prints one JSON line per run: validation loss (nats/char), wall seconds,
# cores kept busy ((user + system) / wall), peak resident memory.
#
#   cargo build --profile bench --features flex --example char_lm
#   benches/quality/char_lm.sh CORPUS MODEL STEPS "SEEDS" INIT [OPTIONS...]
#   benches/quality/char_lm.sh ../shared/data/tinyshakespeare.txt lstm 1000 "1 2 3" torch-modules \
#       --layers 2 --hidden 128 --embed 128 --batch-size 50 --block-size 50
#
# INIT is char_lm's --init (torch-modules, word-language-model, gpt2); OPTIONS are passed to both
# (--layers, --hidden, --embed, --batch-size, --block-size, --lr, --heads).
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus=$1 model=$2 steps=$3 seeds=$4 init=$5
shift 5
bin="${CARGO_TARGET_DIR:-target}/release/examples/char_lm"
python="${PYTHON:-.venv/bin/python}"
for seed in $seeds; do
  dir="$(mktemp -d)"
  (
    RAYON_NUM_THREADS=1 /usr/bin/time -f "%e %U %S %M" -o "$dir/time" "$bin" --device flex \
      --corpus "$corpus" --model "$model" --steps "$steps" --seed "$seed" --init "$init" \
      --valid-every "$steps" --checkpoint-every "$steps" --log-every "$steps" --out "$dir/run" "$@" \
      >"$dir/log" 2>&1
  ) &
  "$python" benches/quality/torch_lm.py "$corpus" --model "$model" --steps "$steps" \
    --seed "$seed" --init "$init" --threads 1 "$@" >"$dir/torch.json" &
  wait
  loss="$(grep -oP 'validation: loss \K[0-9.]+' "$dir/log")"
  read -r wall user sys rss <"$dir/time"
  printf '{"framework": "ember-lm", "model": "%s", "init": "%s", "seed": %s, "steps": %s, "valid_loss": %s, "wall_s": %s, "cores_busy": %s, "peak_rss_mib": %s}\n' \
    "$model" "$init" "$seed" "$steps" "$loss" "$wall" \
    "$(awk -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN { printf "%.2f", (u + s) / w }')" "$((rss / 1024))"
  cat "$dir/torch.json"
  rm -rf "$dir"
done
