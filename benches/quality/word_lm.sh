#!/usr/bin/env bash
# Side by side at equal steps: benches/quality/word_lm.rs (Flex) and benches/quality/torch_lm.py
# --words on a text file's words, the same vocabulary, split, streams and schedule, one seed after
# another. Each seed runs ours and PyTorch's at the same time, one thread each (the 2 cores shared
# evenly). Prints one JSON line per run.
#
#   cargo bench --features flex --bench quality_word_lm --no-run
#   benches/quality/word_lm.sh CORPUS STEPS "SEEDS" INIT
#   benches/quality/word_lm.sh ../shared/data/tinyshakespeare.txt 1000 "1 2 3" torch-modules
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus=$1 steps=$2 seeds=$3 init=$4
bin="$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/quality_word_lm-* | grep -v '\.d$' | head -1)"
python="${PYTHON:-.venv/bin/python}"
# word_lm.rs's defaults, given to both.
sizes=(--layers 2 --hidden 128 --embed 128 --batch-size 20 --block-size 35)
for seed in $seeds; do
  dir="$(mktemp -d)"
  (
    RAYON_NUM_THREADS=1 /usr/bin/time -f "%e %U %S %M" -o "$dir/time" "$bin" "$corpus" --steps "$steps" \
      --seed "$seed" --init "$init" "${sizes[@]}" >"$dir/log" 2>&1
  ) &
  "$python" benches/quality/torch_lm.py "$corpus" --words --steps "$steps" --seed "$seed" --init "$init" \
    --threads 1 "${sizes[@]}" >"$dir/torch.json" &
  wait
  read -r wall user sys rss <"$dir/time"
  tail -1 "$dir/log" | sed "s/}\$/, \"cores_busy\": $(awk -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN { printf "%.2f", (u + s) / w }'), \"peak_rss_mib\": $((rss / 1024))}/"
  cat "$dir/torch.json"
  rm -rf "$dir"
done
