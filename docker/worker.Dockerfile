# check=error=true

# spool-worker: a warm inference engine per GPU, one segment at a time.
# It is built with cgo (libs/infer, the C inference library, with the ref
# and sim backends built in) and loads libnvidia-ml at run time (go-nvml),
# so it is built in a CUDA devel image and runs on the matching CUDA
# runtime image, with ffmpeg, and the backend plugins:
#   libspool_infer_cuda.so    the ref algorithm on the GPU (nvcc)
#   libspool_infer_python.so  embeds Python 3.10 for a PyTorch model module
# in /usr/local/lib/spool ($SPOOL_INFER_PLUGIN_DIR), and the Python model
# modules of libs/infer/python in /usr/local/lib/spool/python.
# It drains on SIGTERM: give it a stop grace period longer than
# SPOOL_WORKER_DRAIN_TIMEOUT.
#
# Build from the repository root (the build context):
#   docker build -f docker/worker.Dockerfile -t spool/worker .

# The Go toolchain, copied into the CUDA devel image below.
FROM golang:1.26.8-bookworm AS go

FROM nvidia/cuda:12.8.1-devel-ubuntu22.04 AS build
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
ARG CUDA_GENCODE="-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_89,code=sm_89 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90"
RUN NVCC_APPEND_FLAGS="$CUDA_GENCODE" make -C /src/libs/infer BUILD=/out/plugins cuda python

FROM nvidia/cuda:12.8.1-runtime-ubuntu22.04
# ffmpeg from the same Ubuntu release as the stitcher image's; libpython3.10
# for the python plugin, numpy for the model modules. Extend this image
# with torch and diffusers to run skyreels_df (libs/infer/python/README.md).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates ffmpeg libpython3.10 python3-numpy \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /out/spool-worker /usr/local/bin/spool-worker
COPY --from=build /out/plugins/libspool_infer_cuda.so /out/plugins/libspool_infer_python.so /usr/local/lib/spool/
COPY --from=build /src/libs/infer/python/*.py /usr/local/lib/spool/python/
# NVIDIA_DRIVER_CAPABILITIES: compute for the cuda plugin, utility for NVML,
# video for ffmpeg's NVENC encoder.
ENV SPOOL_INFER_PLUGIN_DIR=/usr/local/lib/spool \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,video
# Prometheus /metrics (SPOOL_METRICS_ADDR).
EXPOSE 9464
USER nonroot:nonroot
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/spool-worker"]
