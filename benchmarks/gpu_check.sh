#!/usr/bin/env bash
# The one-command GPU check (see benchmarks/gpu_check.py): kernel parity on CUDA, the ResNet-19
# training step at T = 4 and 6, and a short twkd CIFAR-10 run with time to accuracy at every k.
#
#   benchmarks/gpu_check.sh OUT_DIR [DATA_DIR]        # from anywhere; runs in the source folder
#
# Needs one CUDA GPU and a CUDA PyTorch ≥ 2.4 with Triton; installs nothing and uses no network.
# DATA_DIR holds train_jpeg.npz and test_jpeg.npz (the CIFAR-10 JPEG copy; default: $SPIKEDISTILL_DATA).
# Writes OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.md; exits non-zero when a parity check fails.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: benchmarks/gpu_check.sh OUT_DIR [DATA_DIR]" >&2
  exit 2
fi
out="$(mkdir -p "$1" && cd "$1" && pwd)"
if [ $# -ge 2 ]; then
  export SPIKEDISTILL_DATA="$(cd "$2" && pwd)"
fi
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" benchmarks/gpu_check.py "$out"
