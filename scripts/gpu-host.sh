#!/usr/bin/env bash
# Runs a prunebench suite on an NVIDIA GPU host over ssh and brings its CSV back into results/:
# copies the project to the host (a git archive of HEAD: commit first) or clones it (--repo),
# installs Rust if missing and runs `bash scripts/setup.sh --gpu`, builds, runs the suite, and
# copies the CSV back, also when a step fails or on Ctrl-C (the rows written so far). The
# folder on the host is kept between runs (build cache; an interrupted suite resumes where it
# stopped), unless --clean.
#
#   bash scripts/gpu-host.sh --host me@gpu-box --suite suites/smoke.yaml
#
# Options:
#   --host USER@HOST          ssh destination (required); anything ssh accepts, including a
#                             Host from ~/.ssh/config.
#   --suite FILE              Suite to run (required), a path inside the project.
#   --dir DIR                 Project folder on the host (default: prunebench, under the
#                             remote home).
#   --repo URL                Clone URL on the host instead of copying HEAD from here.
#   --ref REF                 With --repo: the tag, commit or origin/BRANCH to check out
#                             (default: origin/HEAD).
#   --out FILE                CSV name under results/ (default: <suite>-gpu.csv).
#   --clean                   Remove --dir on the host at the end.
#   --dry-run                 Print every command, run none (ssh need not be set up).
#   -h, --help                This text.
#
# Every command is printed as it runs, prefixed by '+ '. Needs ssh, scp and git here; the
# host needs an NVIDIA driver, python3 with pip, curl and git (with --repo).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/remote-lib.sh"
host="" suite="" dir="prunebench" repo="" ref="" out="" clean=0 dry=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "gpu-host.sh: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --host) need "$@"; host="$2"; shift 2 ;;
    --suite) need "$@"; suite="$2"; shift 2 ;;
    --dir) need "$@"; dir="$2"; shift 2 ;;
    --repo) need "$@"; repo="$2"; shift 2 ;;
    --ref) need "$@"; ref="$2"; shift 2 ;;
    --out) need "$@"; out="$2"; shift 2 ;;
    --clean) clean=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[ -n "$host" ] || die "--host is required (see --help)"
[ -n "$suite" ] || die "--suite is required (see --help)"
[ -z "$ref" ] || [ -n "$repo" ] || die "--ref needs --repo"
[ -n "$repo" ] || [ -f "$root/$suite" ] || die "no suite file '$suite' in $root"
case "$out" in */*) die "--out is a file name under results/, not a path: '$out'" ;; esac
case "$dir" in /|.|"~"|"$HOME") die "--dir '$dir' is not a project folder" ;; esac

stem="$(basename "$suite" .yaml)"
out="${out:-$stem-gpu.csv}"

host_ssh() { run ssh "$host" "$1"; }
d="$(q "$dir")"

if [ "$dry" = 0 ]; then
  command -v ssh >/dev/null && command -v scp >/dev/null || die "ssh and scp are needed"
  if [ -z "$repo" ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
    echo "gpu-host.sh: note: uncommitted changes are not copied (git archive of HEAD)" >&2
  fi
fi

tmp="$(mktemp -d)"
ran=0 fetched=0
fetch() {
  [ "$dry" = 1 ] || mkdir -p "$root/results"
  run scp "$host:$dir/results/$out" "$root/results/$out"
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$ran" = 1 ] && [ "$fetched" = 0 ]; then
    echo "gpu-host.sh: failed or interrupted: copying back the rows written so far" >&2
    fetch || echo "gpu-host.sh: could not copy the CSV back" >&2
  fi
  if [ "$clean" = 1 ]; then
    host_ssh "rm -rf $d" || { echo "gpu-host.sh: could not remove $dir on $host" >&2; rc=1; }
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$repo" ]; then
  run git -C "$root" archive --format=tar.gz -o "$tmp/prunebench.tar.gz" HEAD
  host_ssh "mkdir -p $d"
  run scp "$tmp/prunebench.tar.gz" "$host:$dir/prunebench.tar.gz"
  # Unpacked over the old tree: target/ and results/ stay (incremental build, resume).
  host_ssh "cd $d && tar -xzf prunebench.tar.gz && rm prunebench.tar.gz"
else
  # A clone already there is updated: fetch, then check out REF (default: origin's HEAD).
  host_ssh "{ [ -d $d/.git ] || git clone $(q "$repo") $d; } && git -C $d fetch --quiet origin && git -C $d checkout --quiet --detach $(q "${ref:-origin/HEAD}")"
fi
host_ssh "nvidia-smi -L && $(remote_setup --gpu "$d")"
host_ssh "$(remote_build "$d")"
ran=1
host_ssh "$(remote_run "$d" "$suite" "$out")"
fetch
fetched=1
if [ "$dry" = 1 ]; then echo "gpu-host.sh: dry run: nothing was run" >&2; else echo "gpu-host.sh: done: results/$out" >&2; fi
