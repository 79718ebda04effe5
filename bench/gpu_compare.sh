#!/usr/bin/env bash
# PyTorch on CUDA (seed data path and preloaded) against our gpu backend, side by side, on one NVIDIA GPU (written for
# an H100). NOT YET RUN: no result of it is in bench/RESULTS.md yet.
#
#   bash bench/gpu_compare.sh            # from the repository root, on the GPU machine
#
# What it needs on that machine (it checks each and says what is missing):
# - an NVIDIA driver (nvidia-smi) and PyTorch with CUDA + torchvision: bench/.venv/bin/python when present, else
#   python3, or PYTHON=/path/to/python
# - Deno 2.9 (`deno` on PATH, or DENO=/path/to/deno)
# - the native library: GAN_NATIVE_LIB=/path/to/libgan_native.so when it was built elsewhere, else cargo builds it
#   here. wgpu finds the GPU through Vulkan, so the Vulkan loader and NVIDIA's ICD must be present (bench/gpu_check.sh
#   shows how to provide them on a machine where nothing can be installed)
#
# What it runs (about 5 minutes; every measurement is its own process; PyTorch and ours alternate):
# 1. a smoke test of each side on the GPU (a few steps), so a missing piece fails fast
# 2. bench/compare.ts --gpu on --no-cpu: the batch-64 table (PyTorch CUDA seed data path, PyTorch CUDA preloaded,
#    ours gpu) and the scaling table (batch 64, 256, 1024, G twice as wide) on the GPU. PyTorch times chunks of 10
#    steps ending in torch.cuda.synchronize(); ours runs 10 steps per FFI call, each call ending with the losses'
#    read-back, so both sides are timed to completed work.
# Output: bench/.gpu/compare.md (the tables) and bench/.gpu/compare.json (every measurement); paste the tables into
# bench/RESULTS.md with the machine (nvidia-smi -L, lscpu model name) and the date.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
  if [ -x bench/.venv/bin/python ]; then PYTHON=bench/.venv/bin/python; else PYTHON="$(command -v python3 || true)"; fi
fi
DENO="${DENO:-deno}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}" # CPU threads of both sides (the host side of the GPU runs)
OUT=bench/.gpu
mkdir -p "$OUT"

fail() {
  echo "gpu_compare.sh: $*" >&2
  exit 1
}

command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: no NVIDIA driver on this machine"
nvidia-smi -L
[ -n "$PYTHON" ] && [ -x "$PYTHON" ] ||
  fail "no python (PYTHON=$PYTHON): python3 -m venv bench/.venv && bench/.venv/bin/pip install torch torchvision safetensors numpy"
"$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
  fail "PyTorch in $PYTHON does not see a CUDA device (torch.cuda.is_available() is False)"
command -v "$DENO" >/dev/null || fail "deno not found (DENO=$DENO)"
if [ -n "${GAN_NATIVE_LIB:-}" ]; then
  [ -f "$GAN_NATIVE_LIB" ] || fail "GAN_NATIVE_LIB=$GAN_NATIVE_LIB does not exist"
else
  command -v cargo >/dev/null || fail "cargo not found and GAN_NATIVE_LIB not set (the native library is built from native/)"
  (cd native && cargo build --release)
fi

[ -f bench/.data/MNIST/raw/train-images-idx3-ubyte ] || "$DENO" run --allow-read --allow-write bench/write_idx.ts

echo "== smoke tests"
"$PYTHON" bench/reference/gan_torch.py --device cuda --mode preloaded --steps 20 --warmup 5
"$PYTHON" bench/reference/gan_torch.py --device cuda --mode seed --steps 20 --warmup 5
"$DENO" run --allow-all bench/ours_bench.ts --backend gpu --steps 20 --warmup 10 --per_call 10

echo "== compare (GPU rows only)"
"$DENO" run --allow-read --allow-write --allow-run --allow-sys=loadavg bench/compare.ts \
  --python "$PYTHON" --gpu on --no-cpu --rounds "$ROUNDS" --threads "$THREADS" --max-minutes 8 --json "$OUT/compare.json" |
  tee "$OUT/compare.md"
{
  echo
  echo "Machine: $(nvidia-smi -L | head -1); CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
  echo "Date: $(date -u +%Y-%m-%d)"
} | tee -a "$OUT/compare.md"
