#!/usr/bin/env bash
# Crash-safety trials: start a suite run, kill -9 it at a random (seeded) moment, run it again
# to completion, and check what is left:
#   - the recovery run succeeds, and a third run finds every planned variant already done
#     (the CSV parses with prunebench's own reader, nothing is missing);
#   - `prunebench merge` drops no duplicate (no `(suite, variant)` row was written twice);
#   - every checkpoint in the trial's folder loads (`prunebench info`), and no temporary
#     file of an atomic write is left beside it.
# Trials alternate between suites/smoke.yaml and tests/fixtures/kill-train.yaml (train, prune,
# fine-tune, measure). One uninterrupted run of each suite first counts its progress lines
# (`run --steps`: a line per step, training step and row); a kill moment is drawn as (line k
# of those, uniformly, then 0-999 ms more): the run is killed that long after its k-th line,
# so the moment falls inside the run however busy the machine is. One row per trial goes to
# the CSV, with the step the run was in when killed, and a summary line to stdout.
#
# Usage: scripts/kill-trials.sh [--trials N] [--seed S] [--out CSV] [--bin PATH] [--work DIR]
#   --trials N   trials (default 20)
#   --seed S     seed of the kill moments (default 1)
#   --out CSV    where the per-trial rows go (default results/kill-trials.csv)
#   --bin PATH   the prunebench binary (default target/release/prunebench)
#   --work DIR   folder for the trials (default: a new temporary folder, removed at the end)
#   --suites L   space-separated subset of "smoke train" to alternate (default both)
# Exit status: 0 when every trial passed, 1 otherwise.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
trials=20 seed=1 out="$root/results/kill-trials.csv" bin="$root/target/release/prunebench" work="" suites="smoke train"
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) trials="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --suites) suites="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kill-trials.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "kill-trials.sh: no prunebench at $bin: cargo build --release, or give --bin PATH" >&2; exit 2; }
[[ "$trials" =~ ^[0-9]+$ ]] || { echo "kill-trials.sh: --trials '$trials' is not a whole number" >&2; exit 2; }
if [ -z "$work" ]; then work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work" "$(dirname "$out")"
cd "$root"   # the CPU plugin is found from the project folder
read -r -a names <<< "$suites"

# Writes the suite file for `name` into folder `dir` and prints its path.
suite_in() {
  local name="$1" dir="$2"
  case "$name" in
    smoke) echo "$root/suites/smoke.yaml" ;;
    train) sed "s|@DIR@|$dir|g" "$root/tests/fixtures/kill-train.yaml" > "$dir/suite.yaml"; echo "$dir/suite.yaml" ;;
    *) echo "kill-trials.sh: unknown suite '$name' (smoke or train)" >&2; exit 2 ;;
  esac
}

now() { date +%s.%N; }

# Progress lines: steps, rows, training notes.
progress='^(step |\[[0-9]+/[0-9]+\] |training|trained )'

# The length (seconds, progress lines) of one uninterrupted run of each suite.
declare -A length lines planned
for name in "${names[@]}"; do
  d="$work/calibrate-$name"; mkdir -p "$d"
  s="$(suite_in "$name" "$d")"
  t0=$(now)
  PRUNEBENCH_CACHE_DIR="$d/cache" "$bin" run "$s" --out "$d/r.csv" --steps 2> "$d/log" || { cat "$d/log" >&2; exit 1; }
  length[$name]=$(echo "$(now) - $t0" | bc)
  lines[$name]=$(grep -cE "$progress" "$d/log")
  planned[$name]=$(grep -o 'of [0-9]* variants' "$d/log" | grep -o '[0-9]*')
  echo "calibration: $name runs ${length[$name]}s, ${lines[$name]} progress lines, ${planned[$name]} variants" >&2
done

RANDOM=$seed
echo "trial,suite,seed,kill_after_line,of_lines,extra_ms,kill_after_s,killed,stage,rows_kept,measured_after,planned,duplicates,temp_files_left,outcome" > "$out"
pass=0
for ((i = 1; i <= trials; i++)); do
  name="${names[$(( (i - 1) % ${#names[@]} ))]}"
  d="$work/trial-$i"; rm -rf "$d"; mkdir -p "$d"
  s="$(suite_in "$name" "$d")"
  # The moment: after progress line k (0: before the first), then extra ms.
  k=$(( RANDOM % ${lines[$name]} ))
  extra=$(( RANDOM % 1000 ))
  export PRUNEBENCH_CACHE_DIR="$d/cache"
  t0=$(now)
  "$bin" run "$s" --out "$d/r.csv" --steps 2> "$d/log1" &
  pid=$!
  while kill -0 "$pid" 2> /dev/null && [ "$(grep -cE "$progress" "$d/log1")" -lt "$k" ]; do sleep 0.05; done
  sleep "$(echo "scale=3; $extra / 1000" | bc)"
  delay=$(echo "$(now) - $t0" | bc)
  killed=no
  if kill -0 "$pid" 2> /dev/null; then kill -9 "$pid" 2> /dev/null && killed=yes; fi
  wait "$pid" 2> /dev/null || true
  # The step in progress: the last step line, or the row just written, or start-up.
  last="$(grep -E '^(step |\[[0-9]+/[0-9]+\] |training|trained )' "$d/log1" | tail -n 1 || true)"
  case "$last" in
    step*) stage="$(echo "$last" | sed -E 's/^step [^ ]*: ([a-z-]+).*/\1/')" ;;
    \[*) stage="after-row" ;;
    train*) stage="train" ;;
    *) stage="start" ;;
  esac
  [ "$killed" = yes ] || stage="finished"
  outcome=ok
  if ! "$bin" run "$s" --out "$d/r.csv" --quiet 2> "$d/log2"; then outcome="recovery-failed"; fi
  kept=$(grep -o '[0-9]* already done' "$d/log2" | grep -o '^[0-9]*' || echo "?")
  measured=$(grep -o '[0-9]* measured' "$d/log2" | grep -o '^[0-9]*' || echo "?")
  "$bin" run "$s" --out "$d/r.csv" --quiet 2> "$d/log3" || true
  done_n=$(grep -o '[0-9]* already done, of [0-9]* variants' "$d/log3" || true)
  [ "$done_n" = "${planned[$name]} already done, of ${planned[$name]} variants" ] || { [ "$outcome" = ok ] && outcome="incomplete:${done_n:-unreadable}"; }
  dups="?"
  if "$bin" merge "$d/r.csv" -o "$d/merged.csv" 2> "$d/log4"; then
    dups=$(grep -o '[0-9]* duplicates dropped' "$d/log4" | grep -o '^[0-9]*' || echo "?")
    [ "$dups" = 0 ] || { [ "$outcome" = ok ] && outcome="duplicates"; }
  else
    [ "$outcome" = ok ] && outcome="csv-unreadable"
  fi
  for f in "$d"/*.safetensors; do
    [ -e "$f" ] || continue
    "$bin" info "$f" > /dev/null 2>&1 || { [ "$outcome" = ok ] && outcome="checkpoint-unreadable:$(basename "$f")"; }
  done
  tmp=$(find "$d" -name '.*.tmp*' | wc -l)
  [ "$outcome" = ok ] && pass=$((pass + 1))
  echo "$i,$name,$seed,$k,${lines[$name]},$extra,$delay,$killed,$stage,$kept,$measured,${planned[$name]},$dups,$tmp,$outcome" >> "$out"
  echo "trial $i/$trials: $name killed=$killed after line $k/${lines[$name]} + ${extra}ms (${delay}s) in '$stage': kept $kept rows, measured $measured more, $dups duplicates, $tmp temp files: $outcome" >&2
done
echo "kill-trials: $pass of $trials trials passed (seed $seed, suites: $suites) -> $out"
[ "$pass" = "$trials" ]
