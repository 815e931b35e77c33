#!/usr/bin/env bash
# Builds the cuda plugin and compares it with the ref backend on one 720p,
# 121-frame, 30-step segment: frames within 2 levels of 255, tail latents
# within 1e-3; then times both. Needs nvcc and an NVIDIA GPU.
#   libs/infer/gpu-check.sh [-w W -h H -f frames -s steps]
set -euo pipefail
cd "$(dirname "$0")"
make cuda
make build/gpu_check
SPOOL_INFER_PLUGIN_DIR="$PWD/build" ./build/gpu_check -b cuda "$@"
