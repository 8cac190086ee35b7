#!/usr/bin/env bash
# The long fuzzing run: every target of tests/fuzz.rs for many executions (issue #13).
#
#   bash scripts/fuzz-long.sh            # 10,000,000 executions in all
#   FUZZ_TOTAL=200000 bash scripts/fuzz-long.sh
#
# Knobs (environment):
#   FUZZ_TOTAL  executions in all (default 10000000), split over the targets by the weights
#               below (cheap parsers get more);
#   FUZZ_SEED   seed of the case generator (default: the current time, printed);
#   FUZZ_JOBS   targets run at once (default 2), each on one thread;
#   FUZZ_OUT    the CSV written (default results/fuzz-long.csv);
#   FUZZ_BIN    an already built tests/fuzz.rs binary to run (default: build it).
# Prints `fuzz-count target=NAME executions=N seconds=S` per target and writes one CSV row
# per target: target,executions,failures,seconds,commit,machine. A failing target's log
# (with proptest's minimized input) is kept in target/fuzz-logs/NAME.log; exit status 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
total="${FUZZ_TOTAL:-10000000}"
seed="${FUZZ_SEED:-$(date +%s)}"
jobs="${FUZZ_JOBS:-2}"
out="${FUZZ_OUT:-results/fuzz-long.csv}"
export PRUNEBENCH_CACHE_DIR="${PRUNEBENCH_CACHE_DIR:-$PWD/target/prunebench-cache}"
# target test name:weight (weights sum to 100)
weights="fuzz_idx:20 fuzz_tuner_cache:20 fuzz_cifar:12 fuzz_image:10 fuzz_npy:6 fuzz_checkpoint:5
fuzz_torchvision_import:6 fuzz_suite_yaml:6 fuzz_report_csv:6 fuzz_rank_truth:6 fuzz_merge_csv:3"
if [ -n "${FUZZ_BIN:-}" ]; then
    bin="$FUZZ_BIN"
else
    cargo test --release --locked --test fuzz --no-run
    bin=$(cargo test --release --locked --test fuzz --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
fi
logs="${CARGO_TARGET_DIR:-target}/fuzz-logs"
mkdir -p "$logs"
echo "fuzz-long: $total executions, seed $seed, $jobs at once, binary $bin"
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tests || echo -dirty)"
machine="$(uname -m) $(nproc) cores$(sed -n 's/^model name[[:space:]]*:\(.*\)/\1/p' /proc/cpuinfo | head -1)"
run_one() { # name weight
    local cases=$(( total * $2 / 100 ))
    FUZZ_CASES="$cases" FUZZ_SEED="$seed" "$bin" --exact "$1" --nocapture >"$logs/$1.log" 2>&1 && rc=0 || rc=$?
    local line
    line=$(grep -o 'fuzz-count target=.*' "$logs/$1.log" | tail -1)
    echo "${line:-fuzz-count target=$1 executions=0 seconds=0} rc=$rc"
}
export -f run_one
export total seed bin logs
results=$(printf '%s\n' $weights | tr ':' ' ' | xargs -P "$jobs" -n 2 bash -c 'run_one "$0" "$1"')
echo "$results"
{
    echo "target,executions,failures,seconds,commit,machine"
    echo "$results" | while read -r _ t e s rc; do
        fail=0; [ "${rc#rc=}" = 0 ] || fail=1
        echo "${t#target=},${e#executions=},$fail,${s#seconds=},$commit,\"$machine\""
    done | sort
} >"$out"
sum=$(awk -F, 'NR>1{e+=$2; f+=$3} END{print e" executions, "f" failing target(s)"}' "$out")
echo "fuzz-long: $sum; wrote $out"
! grep -q ',1,[0-9.]*,' "$out"
