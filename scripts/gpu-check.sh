#!/usr/bin/env bash
# One short, prepared GPU check: a prebuilt prunebench binary against the JAX CUDA PJRT plugin
# already installed on a GPU host (no build, no network), writing everything under OUTDIR:
#   log.txt             everything printed, with the time of each step
#   lowering-gpu.csv    prunebench latency: xla vs tuned (see LATENCY below)
#   <suite>.csv         prunebench run SUITE, for each SUITE given (default suites/gpu-latency.yaml;
#                       `none` runs no suite)
#   lowering.json       the tuner's per-layer decisions on this GPU
#
#   bash scripts/gpu-check.sh target/release/prunebench /tmp/gpu-out [SUITE.yaml ...]
#
# Environment:
#   LATENCY        the `prunebench latency` options after --device gpu (default: --width 1.0,0.5
#                  --batch 1,32,128 --lowering xla,tuned); `skip` skips the step
#   LATENCY_LIMIT  seconds allowed for that step (default 240)
#   SUITE_LIMIT    seconds allowed for each suite (default 150)
#   PRUNEBENCH_CACHE_DIR  the tuner's cache folder (default OUTDIR; lowering.json is copied
#                  to OUTDIR at the end either way)
#   PRUNEBENCH_PLUGIN     the plugin; else found through Python (`jax_plugins.xla_cuda13`,
#                  then `xla_cuda12`)
# Each step has its own time limit, so a slow or failing step leaves the earlier ones' files.
set -uo pipefail
usage="usage: gpu-check.sh PRUNEBENCH_BINARY OUTDIR [SUITE.yaml ...]"
bin="${1:?$usage}"
out="${2:?$usage}"
shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -gt 0 ] || set -- "$root/suites/gpu-latency.yaml"
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
step() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }

step "host"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
nproc; uname -r

if [ -z "${PRUNEBENCH_PLUGIN:-}" ]; then
  for mod in xla_cuda13 xla_cuda12; do
    dir="$(python3 -c "import importlib.util as u, os; s = u.find_spec('jax_plugins.$mod'); print(os.path.dirname(s.origin) if s else '')" 2>/dev/null)"
    if [ -n "$dir" ] && [ -f "$dir/xla_cuda_plugin.so" ]; then
      export PRUNEBENCH_PLUGIN="$dir/xla_cuda_plugin.so"; break
    fi
  done
fi
[ -n "${PRUNEBENCH_PLUGIN:-}" ] || { echo "gpu-check.sh: no JAX CUDA plugin found (pip install jax-cuda13-pjrt)"; exit 2; }
export PRUNEBENCH_CACHE_DIR="${PRUNEBENCH_CACHE_DIR:-$out}"

step "devices"
timeout 60 "$bin" devices --device gpu || { echo "gpu-check.sh: the plugin did not start"; exit 3; }

latency="${LATENCY:---width 1.0,0.5 --batch 1,32,128 --lowering xla,tuned}"
if [ "$latency" != skip ]; then
  step "latency: $latency"
  # shellcheck disable=SC2086 # the options are meant to split
  timeout "${LATENCY_LIMIT:-240}" "$bin" latency --device gpu $latency \
    --min-iters 20 --min-seconds 1 --out "$out/lowering-gpu.csv"
  echo "latency exit: $?"
fi

for suite in "$@"; do
  [ "$suite" != none ] || continue
  step "suite: $suite"
  timeout "${SUITE_LIMIT:-150}" "$bin" run "$suite" --out "$out/$(basename "$suite" .yaml).csv"
  echo "suite exit: $?"
done
[ "$PRUNEBENCH_CACHE_DIR" = "$out" ] || cp "$PRUNEBENCH_CACHE_DIR/lowering.json" "$out/" 2>/dev/null
step "done"
