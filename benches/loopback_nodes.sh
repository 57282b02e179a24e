#!/bin/bash
# The "Multi-node training on loopback" figures of docs/benchmarks.md: char_lm as 1, 2 and 3 nodes
# on this machine, one thread each, Flex, 60 steps; prints node 0's training rows of steps 41-60.
# Build first: cargo build --release --features flex,collective --example char_lm
# Ports below 32768, outside the range the kernel hands out to outgoing connections.
set -u
BIN=${CARGO_TARGET_DIR:-target}/release/examples/char_lm
out=$(mktemp -d)
for model in lstm gpt; do
  for n in 1 2 3; do
    port=$((21000 + n * 10 + (${#model} == 3 ? 100 : 0)))
    args=(--model "$model" --device flex --steps 60 --valid-every 1000 --checkpoint-every 1000 --log-every 20
      --nodes "$n" --master "127.0.0.1:$port" --node-timeout 120)
    for r in $(seq 1 $((n - 1))); do
      RAYON_NUM_THREADS=1 "$BIN" "${args[@]}" --node-rank "$r" --out "$out/$model$n-$r" > "$out/$model$n-$r.log" 2>&1 &
    done
    RAYON_NUM_THREADS=1 "$BIN" "${args[@]}" --node-rank 0 --out "$out/$model$n-0" > "$out/$model$n-0.log" 2>&1
    wait
    echo "== $model, $n nodes"
    grep -E "step +60 .*train" "$out/$model$n-0.log"
  done
done
rm -rf "$out"
