#!/usr/bin/env bash
# Installs everything prunebench needs at run time into the project folder. Idempotent.
#
#   bash scripts/setup.sh            CPU PJRT plugin (.pjrt/cpu) + Fashion-MNIST + ONNX Runtime
#                                    and OpenVINO shared libraries (.runtimes/, ~260 MB unpacked)
#   bash scripts/setup.sh --no-runtimes  skip ONNX Runtime and OpenVINO (only --runtime xla works)
#   bash scripts/setup.sh --gpu      also the JAX CUDA 13 PJRT plugin and CUDA libs (.pjrt/gpu)
#   bash scripts/setup.sh --tpu      also libtpu (.pjrt/tpu); use on Cloud TPU VMs only
#   bash scripts/setup.sh --no-data  skip the dataset
#
# Needs: python3 with pip, and for the data either root (apt-get) or apt-get download + dpkg.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gpu=0 tpu=0 data=1 runtimes=1
for a in "$@"; do
  case "$a" in
    --gpu) gpu=1 ;;
    --tpu) tpu=1 ;;
    --no-data) data=0 ;;
    --no-runtimes) runtimes=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$a' (use --gpu, --tpu, --no-data, --no-runtimes)" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*"; }

pip_into() { # DIR PACKAGE...
  local dir="$1"; shift
  mkdir -p "$dir"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --root-user-action=ignore --upgrade --target "$dir" "$@"
}

cpu_so="$root/.pjrt/cpu/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so"
if [ -f "$cpu_so" ]; then
  say "CPU plugin present: $cpu_so"
else
  say "installing the CPU PJRT plugin (xla-cpu-pjrt==0.0.1, ~63 MB) into .pjrt/cpu"
  pip_into "$root/.pjrt/cpu" "xla-cpu-pjrt==0.0.1"
  [ -f "$cpu_so" ] || { echo "setup.sh: pip finished but $cpu_so is missing" >&2; exit 1; }
fi

if [ "$gpu" = 1 ]; then
  if ls "$root"/.pjrt/gpu/jax_plugins/xla_cuda1*/xla_cuda_plugin.so >/dev/null 2>&1; then
    say "GPU plugin present"
  else
    say "installing the JAX CUDA 13 PJRT plugin with its CUDA libraries into .pjrt/gpu"
    pip_into "$root/.pjrt/gpu" "jax-cuda13-pjrt" "jax-cuda13-plugin[with-cuda]"
  fi
fi

if [ "$tpu" = 1 ]; then
  if [ -f "$root/.pjrt/tpu/libtpu/libtpu.so" ]; then
    say "libtpu present"
  else
    say "installing libtpu into .pjrt/tpu (it is only loaded where TPU hardware is detected)"
    pip_into "$root/.pjrt/tpu" "libtpu"
  fi
fi

# ONNX Runtime and OpenVINO for `--runtime onnxruntime|openvino`: only their C libraries are used
# (loaded at run time by prunebench, no Python), so the wheels go in without dependencies.
ORT_VERSION=1.32.0
OPENVINO_VERSION=2026.4.1
if [ "$runtimes" = 1 ]; then
  if ls "$root"/.runtimes/onnxruntime/onnxruntime/capi/libonnxruntime.so.* >/dev/null 2>&1; then
    say "ONNX Runtime present"
  else
    say "installing ONNX Runtime $ORT_VERSION (wheel ~28 MB) into .runtimes/onnxruntime"
    pip_into "$root/.runtimes/onnxruntime" --no-deps "onnxruntime==$ORT_VERSION"
  fi
  if ls "$root"/.runtimes/openvino/openvino/libs/libopenvino_c.so* >/dev/null 2>&1; then
    say "OpenVINO present"
  else
    say "installing OpenVINO $OPENVINO_VERSION (wheel ~59 MB) into .runtimes/openvino"
    pip_into "$root/.runtimes/openvino" --no-deps "openvino==$OPENVINO_VERSION"
  fi
fi

fm_sys=/usr/share/datasets/fashion-mnist
fm_local="$root/.data/fashion-mnist"
if [ "$data" = 1 ]; then
  if [ -f "$fm_sys/t10k-images-idx3-ubyte.gz" ] || [ -f "$fm_local/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz" ]; then
    say "Fashion-MNIST present"
  elif [ "$(id -u)" = 0 ]; then
    say "installing Debian's dataset-fashion-mnist"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || {
      apt-get update -q >/dev/null
      apt-get install -y -q dataset-fashion-mnist >/dev/null
    }
  else
    say "not root: unpacking dataset-fashion-mnist into .data/fashion-mnist"
    tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null)
    mkdir -p "$fm_local"
    dpkg -x "$tmp"/dataset-fashion-mnist_*.deb "$fm_local"
    rm -rf "$tmp"
  fi
fi
say "done"
