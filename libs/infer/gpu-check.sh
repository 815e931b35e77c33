#!/usr/bin/env bash
# Builds the cuda plugin and compares it with the ref backend: segment 1 of a
# chain (720p, 121 frames, 30 steps, 37-frame tail by default) and segment 2
# conditioned on ref's tail, on both, with the same prompt and with a new one
# (prompt travel: the conditioning's drift fades out over the segment); then
# cuda chained on its own tail.
# Tolerances: decoded frames within 2 levels of 255 per channel, tail
# latents within 1e-3 absolute, cuda's own chain seam exact. Prints a table
# with both backends' times. Needs nvcc and an NVIDIA GPU.
#   libs/infer/gpu-check.sh [-w W -h H -f frames -s steps]
#   libs/infer/gpu-check.sh --self-test   # ref against ref: the harness alone, no GPU
set -euo pipefail
cd "$(dirname "$0")"
# The harness is plain C: it builds (and must build) without CUDA.
make -s build/gpu_check
if [ "${1:-}" = "--self-test" ]; then
  shift
  exec ./build/gpu_check -b ref -w 256 -h 144 -f 25 -s 6 "$@"
fi
if ! command -v "${NVCC:-nvcc}" >/dev/null; then
  echo "gpu-check: nvcc not found: install the CUDA toolkit or run in a CUDA devel image (the harness built; try --self-test)" >&2
  exit 1
fi
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU visible (nvidia-smi -L failed)" >&2
  exit 1
fi
make --no-print-directory cuda cuda-check
nvidia-smi -L
SPOOL_INFER_PLUGIN_DIR="$PWD/build" ./build/gpu_check -b cuda "$@"
