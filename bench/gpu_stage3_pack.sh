#!/usr/bin/env bash
# Builds, on the 2-core build machine, what bench/gpu_stage3.sh carries to a lent GPU machine, and prints the sizes
# (everything that travels must stay under 64 MiB):
#   .devbin/deno.xz          this machine's deno, xz-packed
#   .devbin/stage3.tar.xz    xz-packed: libgan_native.so (this checkout's release library), gpu_parity (the GPU parity
#                            suite's test binary), wgpu_probe (the probe in $1, by default ../shared/gpu-probe),
#                            libgan_native_before.so (the library at 8283be7, 41 dispatches per seed step) and
#                            .data/ (the 10,000 digits as IDX files, bench/write_idx.ts, for PyTorch)
#   .gl/*.deb                the Vulkan loader and GL dispatch libraries (downloaded once)
# About 10 minutes from a cold cargo cache.
#
#   bash bench/gpu_stage3_pack.sh [probe-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
probe="${1:-../shared/gpu-probe}"
for p in /.devbin/ /.gl/ /.gpucheck/; do grep -qxF "$p" .git/info/exclude || echo "$p" >>.git/info/exclude; done
mkdir -p .devbin /tmp/stage3
export CARGO_TERM_COLOR=never

echo "== this checkout's release library and the GPU parity suite's test binary"
(cd native && cargo build --release --locked)
test_bin=$(cd native && cargo test --release --locked --no-run --test gpu_parity --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
cp "$test_bin" /tmp/stage3/gpu_parity

echo "== the library at 8283be7 (before stage 3)"
rm -rf /tmp/before && git worktree add -f -q /tmp/before 8283be7
(cd /tmp/before/native && CARGO_TARGET_DIR=/tmp/before-target cargo build --release --locked)
cp /tmp/before-target/release/libgan_native.so /tmp/stage3/libgan_native_before.so
git worktree remove --force /tmp/before

echo "== the wgpu probe ($probe)"
(cd "$probe" && cargo build --release --locked)
cp "$probe/target/release/wgpu_probe" /tmp/stage3/

cp native/target/release/libgan_native.so /tmp/stage3/
strip /tmp/stage3/* 2>/dev/null || true
[ -d bench/.data/MNIST/raw ] || deno run -A bench/write_idx.ts
rm -rf /tmp/stage3/.data && cp -r bench/.data /tmp/stage3/.data
tar -cJf .devbin/stage3.tar.xz -C /tmp/stage3 libgan_native.so gpu_parity wgpu_probe libgan_native_before.so .data
xz -9 -T2 -c "$(readlink -f "$(command -v deno)")" >.devbin/deno.xz

if ! ls .gl/libvulkan1*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update -q && (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

echo "== what travels: the tracked files, then the carried folders (64 MiB in all)"
git ls-files -z | xargs -0 du -cb | tail -n 1
du -sh .devbin/* .gl
du -scb .devbin .gl | tail -n 1
