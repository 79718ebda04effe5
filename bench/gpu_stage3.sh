#!/usr/bin/env bash
# Issue 15's device check after stage 3, as one command for a lent GPU machine (an H100 or H200; nothing can be
# installed there). It is sized to end in about 7 minutes and writes its logs to $OUT (or .gpucheck/):
#   1. the GPU parity suite (native/tests/gpu_parity.rs, built here) on the real adapter, where split-K is on by
#      default: the last-arriver epilogue, the folded noise, gather and losses, and the paired D backward, all checked
#      against the CPU on hardware;
#   2. the wgpu probe (built here from the probe beside the checkout): a dependent dispatch's cost, the last-arriver
#      epilogue against a separate reduction dispatch and whether it is right, the grid barrier, cooperative matrices;
#   3. the seed step before (the library at 8283be7: 41 dispatches per step) and after (this checkout's: 20), run
#      alternately, 3 rounds, at batch 64 (64 steps per call) and batch 1024 (9 steps per call);
#   4. PyTorch CUDA, preloaded, at batch 64 and 1024 (the machine's own torch), on the same data.
#
# Carried beside the checkout (bench/gpu_stage3_pack.sh makes them; then one `run` of `bash bench/gpu_stage3.sh` with
# carry [".gl", ".devbin"] and timeout_s 540):
#   .gl/*.deb                the Vulkan loader and GL dispatch libraries (see bench/device_setup.sh)
#   .devbin/deno.xz          the deno binary, xz-packed
#   .devbin/stage3.tar.xz    this checkout's release library, the parity suite's test binary, the probe, the library
#                            before stage 3, and the 10,000 digits as IDX files (for PyTorch)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.gpucheck}"
mkdir -p "$out"

bin=/tmp/stage3
mkdir -p "$bin"
tar -xJf .devbin/stage3.tar.xz -C "$bin"
. bench/device_setup.sh
DENO=/tmp/deno
export GAN_NATIVE_LIB="$bin/libgan_native.so"
mkdir -p bench/.data && cp -r "$bin/.data/." bench/.data/
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi: not an NVIDIA machine"
lscpu | sed -n 's/^Model name: *//p' | head -1

# STAGE3_SMOKE=1: a check of this script itself on the build machine (lavapipe, small steps, no NVIDIA driver).
smoke="${STAGE3_SMOKE:-0}"
[ "$smoke" = 1 ] && unset VK_DRIVER_FILES
$DENO eval --no-check 'import { Context } from "./src/native/handles.ts"; console.log(JSON.stringify(new Context({ backend: "gpu" }).info().adapter))' |
  tee "$out/adapter.json"

echo "== 1. the GPU parity suite on this adapter (split-K on by default on hardware; a missing adapter fails it)"
GAN_REQUIRE_GPU=1 timeout 150 "$bin/gpu_parity" --test-threads 2 2>&1 | tee "$out/parity.log" |
  grep -E '^test |test result|panicked' | tail -n 30

echo "== 2. the wgpu probe"
timeout 90 "$bin/wgpu_probe" --chain 4000 --iters 4000 2>&1 | tee "$out/probe.jsonl" | tail -n 20

echo "== 3. the seed step, before (8283be7) and after (this checkout), alternating"
step() { # label, library, folds (1 on, 0 off), args...
  local label=$1 lib=$2 folds=$3
  shift 3
  local line
  line=$(GAN_GPU_FOLDS="$folds" GAN_NATIVE_LIB="$lib" timeout "$tmo" $DENO run -A bench/step_bench.ts --backend gpu "$@" 2>&1 | tee -a "$out/bench.log" |
    grep -E '^(ms/step|dispatches per step)' | tr '\n' ' ')
  echo "$label | $line" | tee -a "$out/summary.txt"
}
# lavapipe takes seconds per step (and most of a minute to build the pipelines), a GPU milliseconds.
if [ "$smoke" = 1 ]; then small=(--steps 4 --per-call 4) large=(--batch 128 --steps 2 --per-call 2) tmo=300 rounds=1; else
  small=(--steps 1280 --per-call 64) large=(--batch 1024 --steps 180 --per-call 9) tmo=60 rounds=3; fi
for round in $(seq "$rounds"); do
  step "round $round before     b64  " "$bin/libgan_native_before.so" 1 --batch 64 "${small[@]}"
  step "round $round folds off b64  " "$GAN_NATIVE_LIB" 0 --batch 64 "${small[@]}"
  step "round $round after     b64  " "$GAN_NATIVE_LIB" 1 --batch 64 "${small[@]}"
  step "round $round before     large" "$bin/libgan_native_before.so" 1 "${large[@]}"
  step "round $round folds off large" "$GAN_NATIVE_LIB" 0 "${large[@]}"
  step "round $round after     large" "$GAN_NATIVE_LIB" 1 "${large[@]}"
done

echo "== 4. PyTorch on CUDA, preloaded (same data: bench/.data)"
torch_run "torch cuda b64 preloaded  " --mode preloaded --batch_size 64 --steps 600 --warmup 30
torch_run "torch cuda b1024 preloaded" --mode preloaded --batch_size 1024 --steps 200 --warmup 20

echo
echo "== summary ($(nvidia-smi -L 2>/dev/null | head -1))"
cat "$out/summary.txt"
