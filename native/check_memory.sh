#!/usr/bin/env bash
# Runs the native unit tests (the C ABI's validation and a whole training run through it) under valgrind memcheck:
# any invalid read/write, use of uninitialized memory or definite leak fails the run. Needs valgrind (Debian package).
set -euo pipefail
cd "$(dirname "$0")"
cargo test --release --lib --no-run 2>&1 | tail -n 1
bin=$(ls -t target/release/deps/gan_native-* | grep -v -e '\.d$' -e '\.so$' -e '\.rlib$' | head -n 1)
valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite "$bin" --test-threads=1
