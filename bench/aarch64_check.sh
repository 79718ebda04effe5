#!/usr/bin/env bash
# Release check of linux-aarch64, run before publishing a release that lists it (see "Releases" in the README):
# the aarch64 Deno binary (npm's @deno/linux-arm64-glibc, the same version as this Deno) runs under qemu-user,
# imports mod.ts from a local server, downloads release/libgan_native-linux-aarch64.so, checks it against
# native/manifest.json, trains a few steps on the cpu backend and samples; bench/aarch64_check.ts compares that with
# the same run on this machine's linux-x86_64 library.
#
#   deno task release            # builds linux-x86_64 and linux-aarch64 into release/, records both in the manifest
#   bash bench/aarch64_check.sh  # about a minute
#
# Needs: qemu-user (or qemu-user-static) and Debian's libc6-arm64-cross (the aarch64 loader and libc, used as the
# sysroot), npm (for the Deno binary, cached after the first time). QEMU, AARCH64_SYSROOT and DENO_AARCH64 override
# where they are found.
set -euo pipefail
cd "$(dirname "$0")/.."

QEMU="${QEMU:-$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)}"
if [ -z "$QEMU" ]; then
  echo "aarch64 check: needs qemu-user: apt-get install qemu-user (or set QEMU)" >&2
  exit 1
fi
SYSROOT="${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}"
if [ ! -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ]; then
  echo "aarch64 check: no aarch64 libc in $SYSROOT: apt-get install libc6-arm64-cross (or set AARCH64_SYSROOT)" >&2
  exit 1
fi

DENO_VERSION="$(deno --version | head -n 1 | awk '{print $2}')"
if [ -z "${DENO_AARCH64:-}" ]; then
  DIR="${XDG_CACHE_HOME:-$HOME/.cache}/deno-gan/aarch64-check/deno-$DENO_VERSION"
  DENO_AARCH64="$DIR/deno"
  if [ ! -x "$DENO_AARCH64" ]; then
    echo "aarch64 check: fetching @deno/linux-arm64-glibc@$DENO_VERSION from npm into $DIR"
    mkdir -p "$DIR"
    TGZ="$(cd "$DIR" && npm pack --silent "@deno/linux-arm64-glibc@$DENO_VERSION")"
    tar -xzf "$DIR/$TGZ" -C "$DIR" --strip-components=1 package/deno
    rm -f "$DIR/$TGZ"
  fi
fi
echo "aarch64 check: $("$QEMU" -L "$SYSROOT" "$DENO_AARCH64" --version | head -n 1) under $("$QEMU" --version | head -n 1)"

exec deno run --allow-read --allow-write --allow-net=127.0.0.1 --allow-run --allow-env bench/aarch64_check.ts \
  --qemu "$QEMU" --sysroot "$SYSROOT" --deno "$DENO_AARCH64"
