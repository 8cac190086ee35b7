#!/usr/bin/env bash
#SBATCH --job-name=prunebench
#SBATCH --array=0-3
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=8
#SBATCH --gres=gpu:1
#SBATCH --time=04:00:00
#SBATCH --output=slurm-prunebench-%A_%a.out
#
# A Slurm job array over a prunebench suite: array task K of N measures shard K/N of the
# suite's variants (whole pruning configurations, balanced by estimated cost) and writes its own CSV,
# results/<suite>-shard-K-of-N.csv, which a re-run of the same task resumes. Merge them after:
#
#   bash scripts/setup.sh --gpu && cargo build --release --locked   # once, in the project
#   sbatch scripts/slurm-array.sh suites/smoke.yaml                 # 4 shards (--array=0-3)
#   sbatch --array=0-7 scripts/slurm-array.sh suites/smoke.yaml     # 8 shards
#   sbatch --array=1-4 ...                                          # also fine: K = ID - MIN
#   target/release/prunebench merge results/smoke-shard-*-of-4.csv -o results/smoke.csv
#
# Submit from the project folder (the job runs in $SLURM_SUBMIT_DIR). Edit the #SBATCH lines
# above (or pass the same options to sbatch) for your cluster: partition, GPUs, time. The
# array's task count is the shard count: SLURM_ARRAY_TASK_COUNT (index from
# SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, divided by SLURM_ARRAY_TASK_STEP).
#
# Usage: slurm-array.sh SUITE [options]
#   SUITE                     The suite file, e.g. suites/smoke.yaml.
#   --out-dir DIR             Folder of the shard CSVs (default: results).
#   --bin PATH                The prunebench binary (default: target/release/prunebench).
#   --dry-run                 Print the command this array task would run, run nothing.
#   -h, --help                This text.
set -euo pipefail

usage() { sed -n '/^# A Slurm job array/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "slurm-array.sh: $*" >&2; exit 2; }

suite="" out_dir="results" bin="target/release/prunebench" dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out-dir) [ $# -ge 2 ] || die "--out-dir needs a value"; out_dir="$2"; shift 2 ;;
    --bin) [ $# -ge 2 ] || die "--bin needs a value"; bin="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$suite" ] || die "one suite per array (got '$suite' and '$1')"; suite="$1"; shift ;;
  esac
done
[ -n "$suite" ] || die "the suite file is required: sbatch scripts/slurm-array.sh suites/NAME.yaml (see --help)"
[ -n "${SLURM_ARRAY_TASK_ID:-}" ] || die "SLURM_ARRAY_TASK_ID is not set: submit with sbatch (an array job), not bash"
[ -n "${SLURM_ARRAY_TASK_COUNT:-}" ] || die "SLURM_ARRAY_TASK_COUNT is not set (Slurm older than 17.11?)"

cd "${SLURM_SUBMIT_DIR:-$PWD}"
id="$SLURM_ARRAY_TASK_ID" min="${SLURM_ARRAY_TASK_MIN:-0}" step="${SLURM_ARRAY_TASK_STEP:-1}"
n="$SLURM_ARRAY_TASK_COUNT"
k=$(( (id - min) / step ))
[ "$k" -ge 0 ] && [ "$k" -lt "$n" ] || die "array task $id gives shard $k/$n (MIN=$min, STEP=$step, COUNT=$n)"
stem="$(basename "$suite" .yaml)"
out="$out_dir/$stem-shard-$k-of-$n.csv"
cmd=("$bin" run "$suite" --shard "$k/$n" --out "$out" --quiet)

echo "+ ${cmd[*]}"
if [ "$dry" = 1 ]; then
  exit 0
fi
[ -x "$bin" ] || die "$bin not found in $PWD: build once before submitting (cargo build --release --locked)"
[ -f "$suite" ] || die "no suite file '$suite' in $PWD"
mkdir -p "$out_dir"
echo "slurm-array.sh: task $id on $(hostname): shard $k/$n of $suite -> $out" >&2
exec "${cmd[@]}"
