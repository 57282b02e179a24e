#!/bin/bash
# The device check for a GPU machine without cargo: the bench and test binaries are built on the
# development machine and run there beside PyTorch (CUDA). How the wgpu figures in
# docs/benchmarks.md were taken, and what the next lease should run.
#
# On the development machine (x86-64), then strip and copy the executables cargo names into .gpu/
# under the names used below (gpt, recurrent, bert, ctc, speech, wgpu_backend):
#   cargo bench --features flex,wgpu --bench gpt --bench recurrent --bench bert --bench ctc --bench speech --no-run
#   cargo test --features flex,wgpu,collective --test wgpu_backend --no-run
# On the GPU machine, from the repository root (Vulkan loader and NVIDIA ICD installed):
#   bash benches/gpu_run.sh OUTDIR [BENCH...]      (default: every bench below)
# Each bench binary takes a criterion filter; `selected` (benches/common/selected.rs) skips the
# other backends' setup when the filter names one, so `-- wgpu` builds nothing on the CPU.
set -u
out=${1:-gpu-results}
shift || true
benches=${*:-speech ctc bert gpt recurrent}
mkdir -p "$out"
# The test binary finds its fixtures through EMBER_LM_FIXTURES when run away from its checkout.
export EMBER_LM_FIXTURES=$PWD/tests/fixtures
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
echo "== torch"
{
  timeout 50 python3 benches/torch_bert.py cuda
  timeout 20 python3 benches/torch_ctc.py cuda
  timeout 25 python3 benches/torch_speech.py cuda
  timeout 300 python3 benches/torch_cuda.py
} 2>&1 | tee "$out/torch.txt"
# One test function runs every check in order; the speech check is last.
echo "== wgpu tests"; (time timeout 300 .gpu/wgpu_backend) 2>&1 | tee "$out/wgpu_tests.txt"
for b in $benches; do
  echo "== $b"; timeout 300 ".gpu/$b" --bench wgpu 2>&1 | tee "$out/$b.txt"
done
