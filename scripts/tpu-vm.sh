#!/usr/bin/env bash
# Runs a prunebench suite on a fresh Cloud TPU VM and brings its CSV back into results/:
# creates the VM, copies the project to it (a git archive of HEAD: commit first) or clones it
# (--repo), installs Rust if missing and runs `bash scripts/setup.sh --tpu`, builds, runs the
# suite, copies the CSV back, and deletes the VM, also when a step fails or on Ctrl-C (the
# CSV written so far is still copied back). Single-host TPU types only (v4-8, v5litepod-1/4/8,
# v6e-1/4/8, ...): every command runs on worker 0.
#
#   bash scripts/tpu-vm.sh --zone us-central2-b --accelerator-type v4-8 \
#       --version tpu-ubuntu2204-base --project my-project --suite suites/smoke.yaml
#
# Options:
#   --zone ZONE               Cloud zone of the VM (required), e.g. us-central2-b.
#   --accelerator-type TYPE   TPU type (required), e.g. v4-8, v5litepod-8, v6e-1.
#   --version RUNTIME         TPU VM runtime image (required), e.g. tpu-ubuntu2204-base,
#                             v2-alpha-tpuv5-lite, v2-alpha-tpuv6e.
#   --suite FILE              Suite to run (required), a path inside the project.
#   --name NAME               VM name (default: prunebench-<suite>-<UTC date and time>).
#   --project PROJECT         Google Cloud project (default: gcloud's configured one).
#   --repo URL                Clone URL on the VM instead of copying HEAD from here.
#   --ref REF                 With --repo: the branch, tag or commit to check out.
#   --out FILE                CSV name under results/ (default: <suite>-<accelerator-type>.csv).
#   --keep                    Leave the VM running at the end (delete it yourself).
#   --dry-run                 Print every command, run none (gcloud need not be installed).
#   -h, --help                This text.
#
# Every command is printed as it runs, prefixed by '+ '. Needs gcloud (with the TPU API
# enabled) and git.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/remote-lib.sh"
zone="" accel="" version="" suite="" name="" project="" repo="" ref="" out="" keep=0 dry=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "tpu-vm.sh: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --zone) need "$@"; zone="$2"; shift 2 ;;
    --accelerator-type) need "$@"; accel="$2"; shift 2 ;;
    --version) need "$@"; version="$2"; shift 2 ;;
    --suite) need "$@"; suite="$2"; shift 2 ;;
    --name) need "$@"; name="$2"; shift 2 ;;
    --project) need "$@"; project="$2"; shift 2 ;;
    --repo) need "$@"; repo="$2"; shift 2 ;;
    --ref) need "$@"; ref="$2"; shift 2 ;;
    --out) need "$@"; out="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
for f in zone:--zone accel:--accelerator-type version:--version suite:--suite; do
  v="${f%%:*}"
  [ -n "${!v}" ] || die "${f#*:} is required (see --help)"
done
[ -z "$ref" ] || [ -n "$repo" ] || die "--ref needs --repo"
[ -n "$repo" ] || [ -f "$root/$suite" ] || die "no suite file '$suite' in $root"
case "$out" in */*) die "--out is a file name under results/, not a path: '$out'" ;; esac

stem="$(basename "$suite" .yaml)"
name="${name:-prunebench-$(printf '%s' "$stem" | tr -c 'a-z0-9-' '-')-$(date -u +%Y%m%d-%H%M%S)}"
out="${out:-$stem-$accel.csv}"
dir=prunebench                      # on the VM, under the home folder
gflags=(--zone="$zone")
[ -z "$project" ] || gflags+=(--project="$project")

vm_ssh() { run gcloud compute tpus tpu-vm ssh "$name" "${gflags[@]}" --worker=0 --command "$1"; }

if [ "$dry" = 0 ]; then
  command -v gcloud >/dev/null || die "gcloud not found: install the Google Cloud CLI, or use --dry-run"
  if [ -z "$repo" ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
    echo "tpu-vm.sh: note: uncommitted changes are not copied (git archive of HEAD)" >&2
  fi
fi

tmp="$(mktemp -d)"
created=0 ran=0 fetched=0
fetch() {
  [ "$dry" = 1 ] || mkdir -p "$root/results"
  run gcloud compute tpus tpu-vm scp "$name:$dir/results/$out" "$root/results/$out" "${gflags[@]}" --worker=0
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$ran" = 1 ] && [ "$fetched" = 0 ]; then
    echo "tpu-vm.sh: failed or interrupted: copying back the rows written so far" >&2
    fetch || echo "tpu-vm.sh: could not copy the CSV back" >&2
  fi
  if [ "$created" = 1 ]; then
    if [ "$keep" = 1 ]; then
      echo "tpu-vm.sh: --keep: the VM $name is still running; delete it with:" >&2
      echo "  gcloud compute tpus tpu-vm delete $name ${gflags[*]} --quiet" >&2
    else
      run gcloud compute tpus tpu-vm delete "$name" "${gflags[@]}" --quiet \
        || { echo "tpu-vm.sh: DELETING THE VM $name FAILED: delete it by hand" >&2; rc=1; }
    fi
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$repo" ]; then
  run git -C "$root" archive --format=tar.gz -o "$tmp/prunebench.tar.gz" HEAD
fi
created=1   # from here on the VM may exist (a failed create can leave one behind)
run gcloud compute tpus tpu-vm create "$name" "${gflags[@]}" --accelerator-type="$accel" --version="$version"
if [ -z "$repo" ]; then
  run gcloud compute tpus tpu-vm scp "$tmp/prunebench.tar.gz" "$name:prunebench.tar.gz" "${gflags[@]}" --worker=0
  vm_ssh "rm -rf $dir && mkdir -p $dir && tar -xzf prunebench.tar.gz -C $dir"
else
  vm_ssh "git clone $(q "$repo") $dir${ref:+ && git -C $dir checkout $(q "$ref")}"
fi
vm_ssh "$(remote_setup --tpu "$dir")"
vm_ssh "$(remote_build "$dir")"
ran=1
vm_ssh "$(remote_run "$dir" "$suite" "$out")"
fetch
fetched=1
if [ "$dry" = 1 ]; then echo "tpu-vm.sh: dry run: nothing was run" >&2; else echo "tpu-vm.sh: done: results/$out" >&2; fi
