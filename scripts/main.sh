#!/usr/bin/env bash
# The main job, end to end on the CPU plugin and real data (Fashion-MNIST): set-up, release
# build, `prunebench run suites/quickstart.yaml` into a new run folder, the report with every
# speed-up compared to the committed reference run (results/quickstart.csv), and the table.
usage() {
  cat <<'USAGE'
Usage: bash scripts/main.sh [--new | --resume DIR] [--dry-run] [-- RUN-ARGS...]

Runs the quickstart suite (a width-0.25 VGG-16 trained for one epoch on Fashion-MNIST, pruned
by four criteria at three ratios, fine-tuned, measured) into a new run folder
runs/quickstart/<UTC timestamp>/ (quickstart.csv, report/), then prints the speed-up table
with each speed-up compared to the committed reference run results/quickstart.csv ("agrees"
when the 95% intervals overlap). Committed results are never used as this run's output.

An unfinished run (no 'finished' file in its folder) is continued by default: the newest one,
said clearly at the start.

  --resume DIR   continue the run in DIR (e.g. runs/quickstart/20261201T001500Z)
  --new          start a new run even when an unfinished one exists
  --dry-run      say which run folder would be used and print the commands; run nothing
  --help         this text
  -- RUN-ARGS    passed on to `prunebench run` (e.g. -- --retry-errors)

Environment: PRUNEBENCH_RUNS_DIR (default runs), PRUNEBENCH_CACHE_DIR (default
target/prunebench-cache: the tuner's lowering choices), CARGO_TARGET_DIR.
USAGE
}
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

suite=quickstart
runs="${PRUNEBENCH_RUNS_DIR:-runs}/$suite"
reference="results/$suite.csv"
resume="" new=0 dry=0 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --resume) resume="${2:?main.sh: --resume needs a run folder, e.g. runs/quickstart/20261201T001500Z}"; shift 2 ;;
    --new) new=1; shift ;;
    --dry-run) dry=1; shift ;;
    --help|-h) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "main.sh: unknown argument '$1' (see bash scripts/main.sh --help)" >&2; exit 2 ;;
  esac
done

# The newest run folder without a 'finished' file, if any.
newest_unfinished() {
  local d
  for d in $(ls -1d "$runs"/*/ 2>/dev/null | sort -r); do
    if [ ! -e "$d/finished" ]; then
      echo "${d%/}"
      return 0
    fi
  done
  return 1
}

if [ -n "$resume" ]; then
  if [ ! -d "$resume" ]; then
    echo "main.sh: no run folder '$resume' (runs are in $runs/; start a new one without --resume)" >&2
    exit 2
  fi
  run="${resume%/}"
  echo "resuming the run in $run"
elif [ "$new" = 0 ] && run="$(newest_unfinished)"; then
  echo "resuming the newest unfinished run: $run (start a new one instead with --new)"
else
  run="$runs/$(date -u +%Y%m%dT%H%M%SZ)"
  echo "new run: $run"
fi

step() {
  echo "+ $*"
  if [ "$dry" = 0 ]; then "$@"; fi
}

bin="${CARGO_TARGET_DIR:-target}/release/prunebench"
export PRUNEBENCH_CACHE_DIR="${PRUNEBENCH_CACHE_DIR:-$PWD/target/prunebench-cache}"
step bash scripts/setup.sh
step cargo build --release --locked
step mkdir -p "$run"
step "$bin" run "suites/$suite.yaml" --out "$run/$suite.csv" ${extra[@]+"${extra[@]}"}
ref_args=()
if [ -f "$reference" ]; then
  ref_args=(--reference "$reference")
else
  echo "main.sh: no reference run $reference: the speed-ups are not compared" >&2
fi
step "$bin" report "$run/$suite.csv" --out "$run/report" --table ${ref_args[@]+"${ref_args[@]}"}
step touch "$run/finished"
echo
echo "run: $run/$suite.csv"
echo "report: $run/report/summary.md (plots beside it: speedup.png, accuracy_vs_latency.png, ...)"
