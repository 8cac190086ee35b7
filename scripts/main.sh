#!/usr/bin/env bash
# The main job, end to end on the CPU plugin and real data (Fashion-MNIST):
#   set-up, release build, then `prunebench run suites/quickstart.yaml`: a width-0.25 VGG-16
#   (CIFAR form, 1 input channel) trained for one epoch, pruned by four criteria at three
#   ratios, each fine-tuned briefly, accuracy before and after, latency at batch 1 and 32.
#   Rows land in results/quickstart.csv (finished rows are kept: re-running continues);
#   tables and plots in results/quickstart-report/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo build --release --locked
export PRUNEBENCH_CACHE_DIR="${PRUNEBENCH_CACHE_DIR:-$PWD/target/prunebench-cache}"
target/release/prunebench run suites/quickstart.yaml "$@"
target/release/prunebench report results/quickstart.csv --out results/quickstart-report
