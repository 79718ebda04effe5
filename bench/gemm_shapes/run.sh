#!/usr/bin/env bash
# The shape table of issue 17 (`deno task bench:gemm`): the seed step's GEMMs through gemm, matrixmultiply, faer and
# OpenBLAS, with the gemm crate built twice (its AVX-512 kernels on, as the library ships, and off: AVX2+FMA only),
# each run on 1 thread and on every core, beside the FMA peak (matrixmultiply, faer and OpenBLAS pick their own
# kernels at run time, so they run in the first build only); then the markdown tables (bench/gemm_table.ts).
#
#   bash bench/gemm_shapes/run.sh [OUT.jsonl] [BATCHES]      # default bench/results/gemm_shapes.jsonl, 64,256,1024
#
# OpenBLAS is Debian's libopenblas0-pthread (apt-get install libopenblas0-pthread) when present, else left out. Its
# 0.3.21 does not know every new CPU (on a Xeon of family 6 model 207 it picks "Prescott", SSE3 only, at a tenth of
# the speed), so its kernels are named: SkylakeX (AVX-512) beside the first build where the CPU has AVX-512, else
# Haswell (AVX2+FMA), and Haswell beside the AVX2 build. OPENBLAS_CORETYPE, when set, overrides both.
set -euo pipefail
cd "$(dirname "$0")"
out="$(realpath -m "${1:-../results/gemm_shapes.jsonl}")"
batches="${2:-64,256,1024}"
cores="$(nproc)"
cargo build --release --locked --quiet
cargo build --release --locked --quiet --no-default-features --target-dir target/avx2
rm -f "$out"
wide=Haswell
grep -qw avx512f /proc/cpuinfo && wide=SkylakeX
for threads in 1 "$cores"; do
  OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-$wide}" \
    ./target/release/gemm_shapes --threads "$threads" --batches "$batches" --json "$out"
  # matrixmultiply and faer pick their own kernels whatever gemm's build: measured once, in the first.
  OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}" \
    ./target/avx2/release/gemm_shapes --threads "$threads" --batches "$batches" --json "$out" --libs ours,gemm,openblas
  [ "$cores" = 1 ] && break
done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p')" >&2
deno run --allow-read ../gemm_table.ts "$out"
