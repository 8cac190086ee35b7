#!/usr/bin/env bash
# One short, prepared GPU check: a prebuilt prunebench binary against the JAX CUDA PJRT plugin
# already installed on a GPU host (no build, no network), writing everything under OUTDIR:
#   log.txt             everything printed, with the time of each step
#   lowering-gpu.csv    prunebench latency: xla vs tuned, width 1 and 0.5, batch 1/32/128, f32
#   gpu-latency.csv     prunebench run suites/gpu-latency.yaml (pruned variants, f32 and bf16)
#   lowering.json       the tuner's per-layer decisions on this GPU
#
#   bash scripts/gpu-check.sh target/release/prunebench /tmp/gpu-out
#
# Each step has its own time limit (seconds; LATENCY_LIMIT, SUITE_LIMIT), so a slow or failing
# step leaves the earlier ones' files. The plugin is found through Python
# (`jax_plugins.xla_cuda13`, then `xla_cuda12`) unless PRUNEBENCH_PLUGIN is set.
set -uo pipefail
bin="${1:?usage: gpu-check.sh PRUNEBENCH_BINARY OUTDIR}"
out="${2:?usage: gpu-check.sh PRUNEBENCH_BINARY OUTDIR}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
export PRUNEBENCH_CACHE_DIR="$out"

step "devices"
timeout 60 "$bin" devices --device gpu || { echo "gpu-check.sh: the plugin did not start"; exit 3; }

step "latency: xla vs tuned"
timeout "${LATENCY_LIMIT:-240}" "$bin" latency --device gpu --width 1.0,0.5 --batch 1,32,128 \
  --lowering xla,tuned --min-iters 20 --min-seconds 1 --out "$out/lowering-gpu.csv"
echo "latency exit: $?"

step "suite: suites/gpu-latency.yaml"
timeout "${SUITE_LIMIT:-150}" "$bin" run "$root/suites/gpu-latency.yaml" --out "$out/gpu-latency.csv"
echo "suite exit: $?"
step "done"
