# check=error=true

# spool-gateway: the HTTP API and the dashboard. A static binary
# (CGO_ENABLED=0) that runs ffprobe and ffmpeg on uploads (libs/media), so
# on Ubuntu with the ffmpeg package rather than distroless.
#
# The dashboard's player (hls.js, pinned in services/gateway/player) is
# fetched from the npm registry and checked against its integrity in the
# build stage, then embedded, as `make build` does outside containers.
#
# Build from the repository root (the build context):
#   docker build -f docker/gateway.Dockerfile -t spool/gateway .

FROM golang:1.26.8-bookworm AS build
ENV CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# Module files first: the download layer stays cached until one changes.
# The gateway's go.mod requires the other services' modules (for its tests)
# and replaces them with their directories, so their go.mod files belong to
# its module graph; the binary imports none of their packages.
COPY proto/go.mod proto/go.sum /src/proto/
COPY libs/go.mod libs/go.sum /src/libs/
COPY services/dispatcher/go.mod services/dispatcher/go.sum /src/services/dispatcher/
COPY services/stitcher/go.mod services/stitcher/go.sum /src/services/stitcher/
COPY services/worker/go.mod services/worker/go.sum /src/services/worker/
COPY services/gateway/go.mod services/gateway/go.sum /src/services/gateway/
WORKDIR /src/services/gateway
RUN go mod download
COPY proto/ /src/proto/
COPY libs/ /src/libs/
COPY services/gateway/ /src/services/gateway/
RUN go run ./cmd/spool-bundle-player -out gateway/web/vendor
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/spool-gateway ./cmd/spool-gateway

FROM ubuntu:24.04
# ffprobe and ffmpeg (the ffmpeg package), from the worker image's Ubuntu
# release: every upload is probed and its first frame decoded.
# ca-certificates for S3 over TLS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /out/spool-gateway /usr/local/bin/spool-gateway
# HTTP API (SPOOL_GATEWAY_ADDR) and Prometheus /metrics (SPOOL_METRICS_ADDR).
EXPOSE 8080 9464
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/spool-gateway"]
