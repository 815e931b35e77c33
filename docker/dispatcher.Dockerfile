# check=error=true

# spool-dispatcher: plans jobs, releases segments, retries and reconciles,
# and runs the intake of jobs' media with ffmpeg (libs/media). A static
# binary (CGO_ENABLED=0) on Ubuntu with the worker image's ffmpeg.
#
# Build from the repository root (the build context):
#   docker build -f docker/dispatcher.Dockerfile -t spool/dispatcher .

FROM golang:1.26.8-bookworm AS build
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# Module files first: the download layer stays cached until one changes.
COPY proto/go.mod proto/go.sum /src/proto/
COPY libs/go.mod libs/go.sum /src/libs/
COPY services/dispatcher/go.mod services/dispatcher/go.sum /src/services/dispatcher/
WORKDIR /src/services/dispatcher
RUN go mod download
COPY proto/ /src/proto/
COPY libs/ /src/libs/
COPY services/dispatcher/ /src/services/dispatcher/
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/spool-dispatcher ./cmd/spool-dispatcher

FROM ubuntu:24.04
# ffmpeg from the same Ubuntu release as the worker image: intake re-encodes
# a kept input video with the workers' codec, and its init segment must be
# byte-equal to theirs.
# ca-certificates for S3 over TLS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /out/spool-dispatcher /usr/local/bin/spool-dispatcher
# Prometheus /metrics (SPOOL_METRICS_ADDR).
EXPOSE 9464
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/spool-dispatcher"]
