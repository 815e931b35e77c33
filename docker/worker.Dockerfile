# check=error=true

# spool-worker: a warm inference engine per GPU, one segment at a time.
# It is built with cgo (libs/infer, the C inference library, with the ref
# and sim backends built in) and loads libnvidia-ml at run time (go-nvml),
# so it is built in a CUDA devel image and runs on the matching CUDA
# runtime image, with ffmpeg, and the backend plugins:
#   libspool_infer_cuda.so    the ref algorithm on the GPU (nvcc)
#   libspool_infer_python.so  embeds the Python of /opt/spool/venv
# in /usr/local/lib/spool ($SPOOL_INFER_PLUGIN_DIR), and the Python model
# modules of libs/infer/python in /usr/local/lib/spool/python.
#
# /opt/spool/venv is the python backend's pinned environment: a venv of the
# image's python3 holding exactly libs/infer/python/requirements.lock
# (torch's CUDA 13 build, diffusers, transformers, …), nothing else. The
# python plugin is built against it and embeds it. CUDA 13 (the base
# images' and torch's) needs an NVIDIA driver >= 580 on the node; the
# NVIDIA Container Toolkit refuses to start the container on an older one.
# The lock's pins need CPython >= 3.11: Ubuntu 24.04's python3 is 3.12.
#
# It drains on SIGTERM: give it a stop grace period longer than
# SPOOL_WORKER_DRAIN_TIMEOUT.
#
# Build from the repository root (the build context):
#   docker build -f docker/worker.Dockerfile -t spool/worker .

# The Go toolchain, copied into the CUDA devel image below.
FROM golang:1.26.8-bookworm AS go

# The pinned Python environment, on the runtime base so that the venv's
# interpreter is the final image's python3. Its own stage: its layers (torch
# and its CUDA libraries, several GB) stay cached until the lock changes.
# --no-deps installs the lock's pins and nothing else; pip check then fails
# the build if the lock misses a dependency of one of them. Wheels only: no
# package is compiled here.
FROM nvidia/cuda:13.0.2-runtime-ubuntu24.04 AS venv
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY libs/infer/python/requirements.lock /opt/spool/requirements.lock
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv /opt/spool/venv \
 && /opt/spool/venv/bin/pip install --disable-pip-version-check --no-input \
      --no-deps --only-binary=:all: -r /opt/spool/requirements.lock \
 && /opt/spool/venv/bin/pip check

FROM nvidia/cuda:13.0.2-devel-ubuntu24.04 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev make python3-dev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=go /usr/local/go /usr/local/go
ENV PATH=/usr/local/go/bin:$PATH \
    CGO_ENABLED=1 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
    CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations"
# Module files first: the download layer stays cached until one changes.
# The worker's go.mod requires the dispatcher's module (for its benchmarks)
# and replaces it with its directory; the binary imports none of its
# packages.
COPY proto/go.mod proto/go.sum /src/proto/
COPY libs/go.mod libs/go.sum /src/libs/
COPY services/dispatcher/go.mod services/dispatcher/go.sum /src/services/dispatcher/
COPY services/worker/go.mod services/worker/go.sum /src/services/worker/
WORKDIR /src/services/worker
RUN go mod download
COPY proto/ /src/proto/
COPY libs/ /src/libs/
COPY services/worker/ /src/services/worker/
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/spool-worker ./cmd/spool-worker
# The cuda plugin gets SASS for Ampere, Ada and Hopper, and PTX that newer
# GPUs JIT-compile; nvcc reads the extra flags from NVCC_APPEND_FLAGS.
# The python plugin is built with the venv's interpreter (mounted from its
# stage at the path it has in the final image): the plugin embeds that
# interpreter, so the venv's site-packages are its only packages. Its
# headers and libpython are the venv's base's (python3-dev).
ARG CUDA_GENCODE="-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_89,code=sm_89 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90"
RUN --mount=type=bind,from=venv,source=/opt/spool/venv,target=/opt/spool/venv \
    NVCC_APPEND_FLAGS="$CUDA_GENCODE" make -C /src/libs/infer BUILD=/out/plugins cuda python \
      PYTHON=/opt/spool/venv/bin/python

FROM nvidia/cuda:13.0.2-runtime-ubuntu24.04
# ffmpeg from the same Ubuntu release as the stitcher image's; python3 (the
# venv's interpreter and standard library) and libpython3.12, which the
# python plugin embeds.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates ffmpeg python3 libpython3.12t64 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=venv /opt/spool/venv /opt/spool/venv
COPY --from=build /out/spool-worker /usr/local/bin/spool-worker
COPY --from=build /out/plugins/libspool_infer_cuda.so /out/plugins/libspool_infer_python.so /usr/local/lib/spool/
COPY --from=build /src/libs/infer/python/*.py /usr/local/lib/spool/python/
# NVIDIA_DRIVER_CAPABILITIES: compute for the cuda plugin and torch, utility
# for NVML, video for ffmpeg's NVENC encoder.
ENV SPOOL_INFER_PLUGIN_DIR=/usr/local/lib/spool \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,video
# Prometheus /metrics (SPOOL_METRICS_ADDR).
EXPOSE 9464
USER nonroot:nonroot
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/spool-worker"]
