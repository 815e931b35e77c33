# check=error=true

# spool-dispatcher: plans jobs, releases segments, retries and reconciles,
# and runs the intake of jobs' media with ffmpeg (libs/media). A static
# binary (CGO_ENABLED=0) on Ubuntu with the worker image's ffmpeg.
#
# The image also ships spoolctl, the operator's command line, for the jobs
# that administer NATS: `spoolctl nats declare --keep` (the Helm chart's
# topology keeper, compose's nats-topology) and `spoolctl nats auth`
# (compose's nats-auth, writing the users into /var/lib/spool/nats-auth,
# which the image creates for the nonroot user so that a fresh volume
# mounted there is writable). spoolctl links libs/infer (C), so it is
# built with cgo in a stage of its own; the dispatcher stays static.
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

# spoolctl: every service's module is in its module graph (it runs the
# whole system in one process for `spoolctl dev`), and libs/infer is C.
# The dashboard's player is not fetched: no one serves the dashboard
# from this image.
FROM golang:1.26.8-bookworm AS spoolctl
ENV CGO_ENABLED=1 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
    CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations"
COPY proto/go.mod proto/go.sum /src/proto/
COPY libs/go.mod libs/go.sum /src/libs/
COPY services/dispatcher/go.mod services/dispatcher/go.sum /src/services/dispatcher/
COPY services/gateway/go.mod services/gateway/go.sum /src/services/gateway/
COPY services/stitcher/go.mod services/stitcher/go.sum /src/services/stitcher/
COPY services/worker/go.mod services/worker/go.sum /src/services/worker/
COPY services/spoolctl/go.mod services/spoolctl/go.sum /src/services/spoolctl/
WORKDIR /src/services/spoolctl
RUN go mod download
COPY proto/ /src/proto/
COPY libs/ /src/libs/
COPY services/dispatcher/ /src/services/dispatcher/
COPY services/gateway/ /src/services/gateway/
COPY services/stitcher/ /src/services/stitcher/
COPY services/worker/ /src/services/worker/
COPY services/spoolctl/ /src/services/spoolctl/
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/spoolctl ./cmd/spoolctl

FROM ubuntu:24.04
# ffmpeg from the same Ubuntu release as the worker image: intake re-encodes
# a kept input video with the workers' codec, and its init segment must be
# byte-equal to theirs.
# ca-certificates for S3 over TLS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nonroot \
 && install -d -o nonroot -g nonroot -m 0700 /var/lib/spool/nats-auth
COPY --from=build /out/spool-dispatcher /usr/local/bin/spool-dispatcher
COPY --from=spoolctl /out/spoolctl /usr/local/bin/spoolctl
# Prometheus /metrics (SPOOL_METRICS_ADDR).
EXPOSE 9464
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/spool-dispatcher"]
