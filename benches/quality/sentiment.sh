#!/usr/bin/env bash
# Side by side at equal steps: examples/sentiment (Flex) and benches/quality/torch_sentiment.py on
# the rt-polarity data, the same split, vocabulary and batches, one seed after another. Each seed
# runs ours and PyTorch's at the same time, one thread each (the 2 cores shared evenly). Prints
# one JSON line per run: validation accuracy, wall seconds, cores kept busy, peak memory.
#
#   cargo build --profile bench --features flex --example sentiment
#   benches/quality/sentiment.sh "SEEDS" INIT [OPTIONS...]
#   benches/quality/sentiment.sh "1 2 3" torch-modules
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=$1 init=$2
shift 2
data=../shared/data
bin="${CARGO_TARGET_DIR:-target}/release/examples/sentiment"
python="${PYTHON:-.venv/bin/python}"
for seed in $seeds; do
  dir="$(mktemp -d)"
  (
    RAYON_NUM_THREADS=1 /usr/bin/time -f "%e %U %S %M" -o "$dir/time" "$bin" --device flex \
      --pos "$data/rt-polarity.pos" --neg "$data/rt-polarity.neg" --epochs 4 --seed "$seed" \
      --init "$init" "$@" >"$dir/log" 2>&1
  ) &
  "$python" benches/quality/torch_sentiment.py "$data/rt-polarity.pos" "$data/rt-polarity.neg" \
    --epochs 4 --seed "$seed" --init "$init" --threads 1 "$@" >"$dir/torch.json" &
  wait
  acc="$(grep -oP 'validation: accuracy \K[0-9.]+' "$dir/log")"
  read -r wall user sys rss <"$dir/time"
  printf '{"framework": "ember-lm", "task": "sentiment", "init": "%s", "seed": %s, "valid_acc": %s, "wall_s": %s, "cores_busy": %s, "peak_rss_mib": %s}\n' \
    "$init" "$seed" "$acc" "$wall" "$(awk -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN { printf "%.2f", (u + s) / w }')" "$((rss / 1024))"
  cat "$dir/torch.json"
  rm -rf "$dir"
done
