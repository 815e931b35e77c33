# check=error=true

# spool-stitcher: appends committed segments into the final MP4 and HLS.
# The Go binary is static (CGO_ENABLED=0), but the stitcher runs ffmpeg
# (libs/media: the crossfades of independent mode, decode and probe), so it
# cannot be distroless. Its base is ubuntu:24.04, the distribution of the
# worker's CUDA runtime base, so both run the same ffmpeg and libx264
# build: a crossfade's init segment must be byte-equal to the workers'
# (media.CrossfadeFragments refuses it otherwise).
#
# Build from the repository root (the build context):
#   docker build -f docker/stitcher.Dockerfile -t spool/stitcher .

FROM golang:1.26.8-bookworm AS build
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# Module files first: the download layer stays cached until one changes.
# The stitcher's go.mod requires the dispatcher's and worker's modules (for
# its benchmarks) and replaces them with their directories; the binary
# imports none of their packages.
COPY proto/go.mod proto/go.sum /src/proto/
COPY libs/go.mod libs/go.sum /src/libs/
COPY services/dispatcher/go.mod services/dispatcher/go.sum /src/services/dispatcher/
COPY services/worker/go.mod services/worker/go.sum /src/services/worker/
COPY services/stitcher/go.mod services/stitcher/go.sum /src/services/stitcher/
WORKDIR /src/services/stitcher
RUN go mod download
COPY proto/ /src/proto/
COPY libs/ /src/libs/
COPY services/stitcher/ /src/services/stitcher/
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/spool-stitcher ./cmd/spool-stitcher

FROM ubuntu:24.04
# ffmpeg (with ffprobe) from the same Ubuntu release as the worker image;
# ca-certificates for S3 over TLS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /out/spool-stitcher /usr/local/bin/spool-stitcher
# Prometheus /metrics (SPOOL_METRICS_ADDR).
EXPOSE 9464
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/spool-stitcher"]
