#!/usr/bin/env bash
# The batch-1024 row of the GPU scaling table for ours (bench/gpu_scaling.sh times 10 steps per call, and at batch 1024
# every 10-step call of the 10-batch epoch holds the short last batch; 9 steps per call leaves full-batch calls).
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/device_setup.sh
timeout 90 /tmp/deno run -A bench/ours_bench.ts --backend gpu --batch_size 1024 --steps 270 --warmup 18 --per_call 9 --json 2>&1 | tail -n 1
