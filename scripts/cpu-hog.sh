#!/usr/bin/env bash
# Keeps CPU cores busy, to check that measurements taken beside it are marked not valid.
usage() {
  cat <<'USAGE'
Usage: bash scripts/cpu-hog.sh [SECONDS] [N]

Starts N busy processes (default: one per core, from nproc) for SECONDS (default 600; 0: until
killed), prints their pids, and waits for them. Killing the script (Ctrl-C, kill PID) stops
them all. Used beside a measurement:

  bash scripts/cpu-hog.sh 600 & prunebench run suites/quickstart.yaml --out /tmp/busy.csv

  --help   this text
USAGE
}
set -euo pipefail
case "${1:-}" in --help|-h) usage; exit 0 ;; esac
seconds="${1:-600}"
n="${2:-$(nproc 2>/dev/null || echo 1)}"
for v in "$seconds" "$n"; do
  case "$v" in ''|*[!0-9]*) echo "cpu-hog.sh: '$v' is not a whole number (usage: cpu-hog.sh [SECONDS] [N])" >&2; exit 2 ;; esac
done

pids=()
stop() {
  if [ ${#pids[@]} -gt 0 ]; then kill "${pids[@]}" 2>/dev/null || true; fi
}
trap stop EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 "$n"); do
  if [ "$seconds" = 0 ]; then
    ( while :; do :; done ) &
  else
    ( end=$((SECONDS + seconds)); while [ "$SECONDS" -lt "$end" ]; do :; done ) &
  fi
  pids+=("$!")
done
echo "cpu-hog: $n busy processes for $([ "$seconds" = 0 ] && echo "ever (until killed)" || echo "${seconds}s"): ${pids[*]}"
wait
