#!/usr/bin/env bash
# Split-K sweep on a lent GPU machine: the seed step at batch 64 (64 steps per submission) for several values of
# GAN_GPU_SPLIT_TARGET (the workgroup count under which a GEMM is split along K; 0 never splits). Same carried files as
# bench/gpu_check.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/device_setup.sh
for t in 0 64 128 256 512 1024 2048; do
  echo "split_target $t | $(GAN_GPU_SPLIT_TARGET=$t timeout 40 /tmp/deno run -A bench/step_bench.ts --backend gpu \
    --batch 64 --steps 1280 --per-call 64 2>&1 | grep '^ms/step')"
done
