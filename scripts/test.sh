#!/usr/bin/env bash
# Set-up plus the whole test suite (what CI runs). Idempotent; needs no GPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# The tuner's cache lives inside the build folder so tests never touch ~/.cache.
export PRUNEBENCH_CACHE_DIR="$PWD/target/prunebench-cache"
cargo build --release --locked
cargo test --release --locked -- --test-threads 2
