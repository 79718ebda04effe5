#!/usr/bin/env bash
# The device check, as one command, for a lent GPU machine (written for an H100; nothing can be installed there):
# the GPU test subset on the real adapter, the seed-step benchmark of our gpu backend (batch 64 and 512, one step
# per submission and many), our cpu backend on that machine's cores, and PyTorch on CUDA (the seed's data path and
# preloaded tensors) on the same data, with the adapter info. Prints a table last; logs go to $OUT (or .gpucheck/).
#
# What it expects beside the checkout (carried from the build machine; see bench/RESULTS.md "GPU" for the call):
#   .gl/*.deb                                the Vulkan loader (libvulkan1) and GL dispatch libraries, unpacked here
#   .devbin/deno.xz                          the deno binary, xz-packed
#   native/target/release/libgan_native.so  the release library built on the build machine
#   bench/.data/MNIST/raw/*                  the 10,000 digits as IDX files (bench/write_idx.ts)
# and python3 with PyTorch + torchvision on the machine (the device image has them).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.gpucheck}"
mkdir -p "$out"

. bench/device_setup.sh
DENO=/tmp/deno
nvidia-smi -L
lscpu | sed -n 's/^Model name: *//p' | head -1
echo "cores: $(nproc)"

echo "== GPU tests (the parity suite on both backends; the gpu rows run on this machine's adapter)"
timeout 120 $DENO test --no-check -A tests/native_test.ts tests/errors_test.ts 2>&1 | grep -v XDG_RUNTIME | tee "$out/tests.log" | tail -n 30

echo "== our step benchmark"
bench() { # label, args...
  local label=$1
  shift
  local line
  line=$(timeout 60 $DENO run -A bench/step_bench.ts "$@" 2>&1 | tee -a "$out/bench.log" | grep '^ms/step')
  echo "$label | $line" | tee -a "$out/summary.txt"
}
$DENO eval --no-check 'import { Context } from "./src/native/handles.ts"; console.log(JSON.stringify(new Context({ backend: "gpu" }).info()))' | tee "$out/adapter.json"
bench "ours gpu  b64  1 step/submission " --backend gpu --batch 64 --steps 300 --per-call 1
bench "ours gpu  b64 64 steps/submission" --backend gpu --batch 64 --steps 1280 --per-call 64
bench "ours gpu b512  1 step/submission " --backend gpu --batch 512 --steps 200 --per-call 1
bench "ours gpu b512 64 steps/submission" --backend gpu --batch 512 --steps 640 --per-call 64
bench "ours cpu  b64 (all cores)        " --backend cpu --batch 64 --steps 300 --per-call 16

echo "== PyTorch on CUDA (same data: bench/.data)"
torch_run "torch cuda b64 seed data path    " --mode seed --batch_size 64 --steps 300 --warmup 30
torch_run "torch cuda b64 preloaded         " --mode preloaded --batch_size 64 --steps 600 --warmup 30
torch_run "torch cuda b512 preloaded        " --mode preloaded --batch_size 512 --steps 300 --warmup 30

echo
echo "== summary ($(nvidia-smi -L | head -1))"
cat "$out/summary.txt"
