#!/bin/bash
# How the wgpu figures in docs/benchmarks.md were taken on a GPU machine without cargo: the bench
# and test binaries are built on the development machine and run there beside PyTorch.
#
# On the development machine (x86-64):
#   cargo bench --features wgpu --bench gpt --bench recurrent --no-run
#   cargo test --features flex,wgpu,collective --test wgpu_backend --no-run
#   copy the three executables cargo names into .gpu/ as gpt, recurrent and wgpu_backend
# On the GPU machine, from the repository root (Vulkan loader and NVIDIA ICD installed):
#   bash benches/gpu_run.sh OUTDIR
set -u
out=${1:-gpu-results}
mkdir -p "$out"
# The test binary finds its fixtures through EMBER_LM_FIXTURES when run away from its checkout.
export EMBER_LM_FIXTURES=$PWD/tests/fixtures
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
echo "== wgpu tests"; (time timeout 300 .gpu/wgpu_backend --test-threads=1) 2>&1 | tee "$out/wgpu_tests.txt"
echo "== torch"; timeout 300 python3 benches/torch_cuda.py 2>&1 | tee "$out/torch_cuda.txt"
echo "== gpt"; timeout 600 .gpu/gpt --bench wgpu 2>&1 | tee "$out/gpt.txt"
echo "== recurrent"; timeout 600 .gpu/recurrent --bench wgpu 2>&1 | tee "$out/recurrent.txt"
