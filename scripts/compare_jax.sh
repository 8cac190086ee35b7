#!/usr/bin/env bash
# Dev-only: prunebench's forward latency next to JAX's jit of the same network, one run after
# the other on the same machine. Needs JAX in a throwaway venv (see scripts/jax_reference.py).
#   bash scripts/compare_jax.sh [PYTHON] [OUT_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py="${1:-/tmp/jaxenv/bin/python}"
out="${2:-target/compare-jax}"
mkdir -p "$out"
export PRUNEBENCH_CACHE_DIR="${PRUNEBENCH_CACHE_DIR:-$PWD/target/prunebench-cache}"
cargo build --release --locked -q
rm -f "$out/prunebench.csv"
target/release/prunebench latency --device cpu --width 1.0,0.5 --batch 1,32 --lowering xla,tuned \
  --min-iters 10 --min-seconds 3 --out "$out/prunebench.csv" | tee "$out/prunebench.txt"
"$py" scripts/jax_reference.py --width 1.0,0.5 --batch 1,32 --min-seconds 3 | tee "$out/jax.csv"
