#!/usr/bin/env bash
# Side by side at equal steps: examples/translate --model rnn (Flex) and
# benches/quality/torch_translate.py on the Tatoeba pairs, the same split, vocabularies and
# batches, one seed after another. Each seed runs ours and PyTorch's at the same time, one thread
# each (the 2 cores shared evenly). Both decode greedily (--beams 1) for the held-out BLEU of the
# first 200 held-out pairs. Prints one JSON line per run.
#
#   cargo build --profile bench --features flex --example translate
#   benches/quality/translate.sh EPOCHS "SEEDS" INIT [OPTIONS...]
#   benches/quality/translate.sh 10 "1 2 3" torch-modules
set -euo pipefail
cd "$(dirname "$0")/../.."
epochs=$1 seeds=$2 init=$3
shift 3
pairs=../shared/data/eng-fra.txt
bin="${CARGO_TARGET_DIR:-target}/release/examples/translate"
python="${PYTHON:-.venv/bin/python}"
for seed in $seeds; do
  dir="$(mktemp -d)"
  (
    RAYON_NUM_THREADS=1 /usr/bin/time -f "%e %U %S %M" -o "$dir/time" "$bin" --device flex --model rnn \
      --pairs "$pairs" --epochs "$epochs" --beams 1 --seed "$seed" --init "$init" "$@" >"$dir/log" 2>&1
  ) &
  "$python" benches/quality/torch_translate.py "$pairs" --epochs "$epochs" --seed "$seed" --init "$init" \
    --threads 1 "$@" >"$dir/torch.json" &
  wait
  bleu="$(grep -oP 'held-out BLEU \K[0-9.]+' "$dir/log")"
  read -r wall user sys rss <"$dir/time"
  printf '{"framework": "ember-lm", "task": "translate", "init": "%s", "seed": %s, "bleu": %s, "wall_s": %s, "cores_busy": %s, "peak_rss_mib": %s}\n' \
    "$init" "$seed" "$bleu" "$wall" \
    "$(awk -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN { printf "%.2f", (u + s) / w }')" "$((rss / 1024))"
  cat "$dir/torch.json"
  rm -rf "$dir"
done
