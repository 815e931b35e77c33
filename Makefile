# spool: the two commands are `make demo` and `make test`; see README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT      := $(CURDIR)
BIN       := $(ROOT)/.spool/bin
# Tools built from the Go module proxy are cached per version outside the
# work tree, so a fresh clone on a warm machine does not rebuild them.
TOOLCACHE ?= $(HOME)/.cache/spool/tools
export PATH := $(BIN):/usr/local/go/bin:$(PATH)
export GOFLAGS ?= -buildvcs=false
# go-nvml declares deprecated NVML calls; cgo compiles a wrapper of each, and
# their warnings would drown real ones (a package outside the project cannot
# take a #cgo directive). Every target that compiles sets the flag, on top of
# whatever CGO_CFLAGS the caller has; `make build` therefore gives binaries
# whose build printed no warning, and the docs run those, never `go run`.
CGO_CFLAGS ?= -O2 -g
export CGO_CFLAGS := $(filter-out -Wno-deprecated-declarations,$(CGO_CFLAGS)) -Wno-deprecated-declarations

GO                    ?= go
BUF_VERSION           := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
MINIO_VERSION         := v0.0.0-20260212201848-7aac2a2c5b7c
# The NATS cluster of libs/devstack runs this nats-server binary: the version
# libs/go.mod pins (devstack.NATSServerVersion; a test checks all three).
NATS_SERVER_VERSION   := v2.15.2
APT_PACKAGES          := ffmpeg postgresql postgresql-client valgrind python3-dev python3-venv espeak-ng
# nvcc for the cuda plugin (make -C libs/infer cuda-check), installed only
# where none is found (a CUDA devel image has its own): Debian's CUDA 11.8,
# from the contrib and non-free components, which deps enables (1.6 GB to
# download, 5.2 GiB installed, about 3 minutes).
CUDA_APT_PACKAGES     := nvidia-cuda-toolkit
# The dashboard's player, bundled into the gateway at build time from the
# npm registry (no Node.js needed), pinned in services/gateway/player/pin.go.
PLAYER                := services/gateway/gateway/web/vendor/hls.min.js
# The dashboard's browser test: Debian's chromium driven by playwright-core
# (pinned in services/spoolctl/systest/browser/package-lock.json).
BROWSER_DIR           := $(ROOT)/.spool/browser
BROWSER_SRC           := services/spoolctl/systest/browser
TEST_TIMEOUT          ?= 20m
TEST_FLAGS            ?=

# Every module of the workspace, as ./dir/... patterns.
MODULE_DIRS = $(shell $(GO) list -m -f '{{.Dir}}')
PKGS        = $(addsuffix /...,$(MODULE_DIRS))
# Where `make build` writes every binary of the workspace (each cmd/<name>).
BUILD_BIN  ?= bin
# Modules kept out of the workspace, so that their heavy dependencies
# (compose-go and BuildKit, Helm, KEDA and Kubernetes) never move the
# services' versions: the deployment tests (deploy/keda runs KEDA's own
# nats-jetstream scaler against a NATS cluster), and the collector's
# stand-in module.
OUTSIDE_MODULES := docker deploy/helm deploy/keda deploy/otel/statusutil

.PHONY: help env deps venv fuzz-venv fuzz tiny-model gpu-wheels browser-deps otelcol helm-lint images stack tools build test lint proto proto-check devstack demo bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

env: ## print export lines of the Go variables every target sets, to eval before running go by hand
	@echo "export CGO_CFLAGS='$(CGO_CFLAGS)'"
	@echo "export GOFLAGS='$(GOFLAGS)'"

deps: tools ## install what the tests and the stack need (Debian packages, MinIO, buf)
	@missing=(); \
	command -v ffmpeg >/dev/null || missing+=(ffmpeg); \
	command -v espeak-ng >/dev/null || missing+=(espeak-ng); \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql); \
	command -v psql >/dev/null || missing+=(postgresql-client); \
	command -v valgrind >/dev/null || missing+=(valgrind); \
	[ -x /usr/bin/python3-config ] || missing+=(python3-dev); \
	/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv); \
	cuda=(); command -v "$${NVCC:-nvcc}" >/dev/null || cuda=($(CUDA_APT_PACKAGES)); missing+=($${cuda[@]}); \
	if [ $${#missing[@]} -eq 0 ]; then echo "deps: Debian packages present"; exit 0; fi; \
	echo "deps: installing $${missing[*]}"; \
	if [ "$$(id -u)" != 0 ]; then \
	  [ $${#cuda[@]} -eq 0 ] || echo "deps: $${cuda[*]} is in Debian's contrib and non-free components: add them to the apt sources" >&2; \
	  echo "deps: not root; run: sudo apt-get update && sudo apt-get install -y $(APT_PACKAGES) $${cuda[*]}" >&2; exit 1; fi; \
	if [ $${#cuda[@]} -gt 0 ]; then \
	  add='/\scontrib(\s|$$)/!s/$$/ contrib/;/\snon-free(\s|$$)/!s/$$/ non-free/'; \
	  for f in /etc/apt/sources.list.d/*.sources; do if [ -f "$$f" ] && grep -Eqi '^URIs:.*debian' "$$f"; then \
	    sed -i -E "/^Components:.*\smain(\s|$$)/{$$add}" "$$f"; fi; done; \
	  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do if [ -f "$$f" ]; then \
	    sed -i -E "/^deb(-src)?\s.*debian.*\smain(\s|$$)/{$$add}" "$$f"; fi; done; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) $${cuda[@]} >/dev/null
	@$(MAKE) --no-print-directory $(BIN)/minio $(PLAYER) $(BIN)/spool-otelcol venv fuzz-venv tiny-model

# The python backend's environment: a venv from Debian's python3 with every
# package of libs/infer/python/requirements.lock (torch, diffusers,
# transformers, ...), built once per lock and interpreter in the cache outside
# the work tree (about 2.7 GB downloaded from PyPI and 5 GB installed, about
# 2 minutes the first time here), and linked as .spool/venv. The python
# plugin embeds it (libs/infer/plugins.mk).
VENV_LOCK  := libs/infer/python/requirements.lock
VENV_BASE  ?= /usr/bin/python3
VENV       := $(ROOT)/.spool/venv
venv: ## build the pinned Python environment of the python backend into .spool/venv (torch, diffusers; cached per lock)
	$(call build-venv,venv,$(VENV_LOCK),$(VENV),the first time: about 2.7 GB from PyPI)

# The API fuzzer's environment: schemathesis and what it needs, pinned in
# services/gateway/apifuzz/requirements.lock (about 30 MB from PyPI, 90 MB
# installed, seconds), built as the python backend's is and linked as
# .spool/apifuzz-venv, whose st TestSchemathesis runs.
FUZZ_VENV_LOCK := services/gateway/apifuzz/requirements.lock
FUZZ_VENV      := $(ROOT)/.spool/apifuzz-venv
fuzz-venv: ## build the pinned Python environment of the API fuzzer (schemathesis) into .spool/apifuzz-venv
	$(call build-venv,fuzz-venv,$(FUZZ_VENV_LOCK),$(FUZZ_VENV),about 30 MB from PyPI)

# build-venv NAME, LOCK, LINK, SIZE: a venv from $(VENV_BASE) with every
# package of LOCK, built once per lock and interpreter in the cache outside
# the work tree, and linked as LINK.
define build-venv
	@mkdir -p $(HOME)/.cache/spool/venv $(ROOT)/.spool
	@cache=$(HOME)/.cache/spool/venv/$$(sha256sum < $(2) | cut -c1-16)-$$($(VENV_BASE) -c 'import sys; print("py%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	exec 9>$$cache.lock; flock 9; \
	if [ ! -f $$cache/.complete ]; then \
	  echo "$(1): building $$cache from $(2) ($(4))"; start=$$(date +%s); \
	  rm -rf $$cache && $(VENV_BASE) -m venv $$cache || { echo "$(1): $(VENV_BASE) -m venv failed; run \"make deps\" (Debian's python3-venv)" >&2; exit 1; }; \
	  $$cache/bin/python -m pip install --quiet --no-input --require-virtualenv --only-binary=:all: -r $(2) && \
	  $$cache/bin/python -m pip check >/dev/null || { echo "$(1): installing $(2) failed" >&2; exit 1; }; \
	  touch $$cache/.complete; echo "$(1): built in $$(( $$(date +%s) - start )) s, $$(du -sh $$cache | cut -f1)"; fi; \
	[ "$$(readlink $(3) 2>/dev/null)" = "$$cache" ] || { rm -rf $(3) && ln -s $$cache $(3); }
endef

# The tiny SkyReels-V2 diffusion-forcing pipeline of the catalog's
# skyreels-v2-df-tiny: diffusers' own classes with random weights from a
# fixed seed, made offline in seconds (libs/infer/python/make_tiny_skyreels.py),
# in the models folder workers read (SPOOL_WORKER_MODELS_DIR=.spool/models).
MODELS     := $(ROOT)/.spool/models
tiny-model: venv ## make the tiny SkyReels-V2 pipeline (random weights, offline) in .spool/models/skyreels-v2-df-tiny
	@$(MAKE) --no-print-directory $(MODELS)/skyreels-v2-df-tiny/model_index.json
$(MODELS)/skyreels-v2-df-tiny/model_index.json: libs/infer/python/make_tiny_skyreels.py $(VENV_LOCK)
	@mkdir -p $(MODELS)
	HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 $(VENV)/bin/python -W ignore libs/infer/python/make_tiny_skyreels.py $(@D) >/dev/null

# The wheels libs/infer/gpu-check.sh carries to a GPU machine that reaches
# no registry, whose CUDA image has its own python3.12 with torch,
# transformers, accelerate, safetensors, huggingface_hub (1.33; diffusers
# needs >= 1.32), numpy, regex, requests, Pillow and filelock, but not
# diffusers and ftfy: these at the lock's versions with what they need
# beyond the image's (wcwidth; importlib_metadata with zipp and
# lazy-importer), for CPython 3.12 on manylinux x86_64, into
# .spool/gpu-wheels (about 7 MB). Fetched again only when a pin changes.
GPU_WHEELS     := diffusers ftfy wcwidth importlib_metadata zipp lazy-importer
GPU_WHEELS_DIR := $(ROOT)/.spool/gpu-wheels
gpu-wheels: ## download the wheels the GPU check carries (diffusers, ftfy, ... for CPython 3.12) into .spool/gpu-wheels
	@pins=$$(for p in $(GPU_WHEELS); do grep -i -m1 "^$$p==" $(VENV_LOCK) || { echo "gpu-wheels: $$p is not pinned in $(VENV_LOCK)" >&2; exit 1; }; done) || exit 1; \
	if [ "$$(cat $(GPU_WHEELS_DIR)/.pins 2>/dev/null)" = "$$pins" ]; then echo "gpu-wheels: $(GPU_WHEELS_DIR) is current"; exit 0; fi; \
	py=$(VENV_BASE); $$py -m pip --version >/dev/null 2>&1 || py=$(VENV)/bin/python; \
	rm -rf $(GPU_WHEELS_DIR).tmp && mkdir -p $(GPU_WHEELS_DIR).tmp && \
	$$py -m pip download --quiet --no-input --disable-pip-version-check --no-deps --only-binary=:all: \
	  --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
	  -d $(GPU_WHEELS_DIR).tmp $$pins || { echo "gpu-wheels: pip download failed" >&2; rm -rf $(GPU_WHEELS_DIR).tmp; exit 1; }; \
	echo "$$pins" > $(GPU_WHEELS_DIR).tmp/.pins && rm -rf $(GPU_WHEELS_DIR) && mv $(GPU_WHEELS_DIR).tmp $(GPU_WHEELS_DIR); \
	echo "gpu-wheels: $$(ls $(GPU_WHEELS_DIR)/*.whl | wc -l) wheels, $$(du -sh $(GPU_WHEELS_DIR) | cut -f1), in $(GPU_WHEELS_DIR)"

$(PLAYER): services/gateway/player/pin.go
	$(GO) run ./services/gateway/cmd/spool-bundle-player -out $(@D)

browser-deps: ## install what the dashboard's browser test needs (chromium, Node.js, playwright-core)
	@missing=(); command -v chromium >/dev/null || missing+=(chromium); command -v node >/dev/null || missing+=(nodejs npm); \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "browser-deps: installing $${missing[*]}"; \
	  if [ "$$(id -u)" != 0 ]; then echo "browser-deps: not root; run: sudo apt-get install -y $${missing[*]}" >&2; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $${missing[*]} >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $${missing[*]} >/dev/null; }; fi
	@$(MAKE) --no-print-directory $(BROWSER_DIR)/node_modules/playwright-core/package.json

$(BROWSER_DIR)/node_modules/playwright-core/package.json: $(BROWSER_SRC)/package.json $(BROWSER_SRC)/package-lock.json
	@mkdir -p $(BROWSER_DIR) && cp $^ $(BROWSER_DIR)/
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The OpenTelemetry Collector of dev and of the tracing test, built by the
# collector builder from deploy/otel/builder.yaml; cached per manifest.
OCB_VERSION  := v0.164.0
OTELCOL_HASH  = $(shell cat deploy/otel/builder.yaml deploy/otel/statusutil/go.mod deploy/otel/statusutil/*.go | sha256sum | cut -c1-16)
otelcol: $(BIN)/spool-otelcol ## build the OpenTelemetry Collector (OTLP in; file and debug out) into .spool/bin
$(BIN)/builder: Makefile
	$(call install-tool,builder,go.opentelemetry.io/collector/cmd/builder,$(OCB_VERSION))
# The module proxy serves no zip of a test-only dependency of the file
# exporter, so the builder's own `go mod tidy` stops there, after it has
# written the sources and go.mod; `go mod tidy -e` then resolves what the
# build needs, and go build compiles it.
$(BIN)/spool-otelcol: deploy/otel/builder.yaml $(wildcard deploy/otel/statusutil/*) | $(BIN)/builder
	@cache=$(TOOLCACHE)/spool-otelcol-$(OTELCOL_HASH); \
	if [ ! -x $$cache/spool-otelcol ]; then \
	  echo "building the OpenTelemetry Collector with builder $(OCB_VERSION) (once per manifest, about 2 minutes)"; \
	  rm -rf deploy/otel/build; \
	  (cd deploy/otel && GOFLAGS= $(BIN)/builder --config builder.yaml --skip-compilation >/dev/null 2>&1; \
	   test -f build/go.mod || { echo "the collector builder wrote no go.mod; run it by hand in deploy/otel to see why" >&2; exit 1; }) && \
	  (cd deploy/otel/build && GOWORK=off GOFLAGS= $(GO) mod tidy -e >/dev/null 2>&1; \
	   GOWORK=off GOFLAGS= CGO_ENABLED=0 $(GO) build -trimpath -o spool-otelcol .) && \
	  mkdir -p $$cache && mv deploy/otel/build/spool-otelcol $$cache/ && rm -rf deploy/otel/build; fi; \
	flock $(BIN)/.spool-otelcol.lock sh -c "cp -f $$cache/spool-otelcol $@.tmp && mv -f $@.tmp $@"

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/nats-server $(BIN)/nats ## install the pinned code generators, nats-server (the devstack's NATS cluster) and the nats CLI (the README's `nats pub`)

# `make test` runs Helm's linter through its Go SDK (deploy/helm); this runs
# the helm binary itself, built once from the module proxy (about a minute).
HELM_VERSION := v3.22.0
$(BIN)/helm: Makefile
	$(call install-tool,helm,helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))
helm-lint: $(BIN)/helm ## helm lint --strict the chart, with its defaults and with deploy/helm/spool/ci/*-values.yaml
	$(BIN)/helm lint --strict deploy/helm/spool
	@for f in deploy/helm/spool/ci/*-values.yaml; do echo "$(BIN)/helm lint --strict deploy/helm/spool -f $$f"; \
	  $(BIN)/helm lint --strict deploy/helm/spool -f $$f || exit 1; done

# install-tool NAME, MODULE@VERSION: go install into the cache once, copy into .spool/bin.
define install-tool
	@mkdir -p $(BIN) $(TOOLCACHE)/$(1)-$(3)
	@if [ ! -x $(TOOLCACHE)/$(1)-$(3)/$(1) ]; then \
	  echo "building $(2)@$(3) (once per machine)"; \
	  GOFLAGS= GOBIN=$(TOOLCACHE)/$(1)-$(3) $(GO) install $(2)@$(3); fi
	@flock $(BIN)/.$(1).lock sh -c 'cp -f $(TOOLCACHE)/$(1)-$(3)/$(1) $@.tmp && mv -f $@.tmp $@'
endef

$(BIN)/buf: Makefile
	$(call install-tool,buf,github.com/bufbuild/buf/cmd/buf,$(BUF_VERSION))
$(BIN)/protoc-gen-go: Makefile
	$(call install-tool,protoc-gen-go,google.golang.org/protobuf/cmd/protoc-gen-go,$(PROTOC_GEN_GO_VERSION))
# Must equal devstack.MinIOVersion, which builds it itself when missing.
$(BIN)/minio: Makefile
	$(call install-tool,minio,github.com/minio/minio,$(MINIO_VERSION))
# devstack.NATSCluster looks it up in the tool cache (building it there itself
# when asked), then in .spool/bin.
$(BIN)/nats-server: Makefile
	$(call install-tool,nats-server,github.com/nats-io/nats-server/v2,$(NATS_SERVER_VERSION))

# The nats CLI of the README's examples (`nats pub spool.jobs.submit …`), which
# a test runs as written with the credentials `spoolctl dev` prints.
NATS_CLI_VERSION := v0.5.0
$(BIN)/nats: Makefile
	$(call install-tool,nats,github.com/nats-io/natscli/nats,$(NATS_CLI_VERSION))

build: $(PLAYER) ## compile every module and write every binary (each cmd/*) to bin/
	@$(MAKE) --no-print-directory -C libs/infer sources-hash
	@mkdir -p $(BUILD_BIN)
	@echo "go build -o $(BUILD_BIN)/ (every package of every module)"
	@$(GO) build -o $(BUILD_BIN)/ $(PKGS)
	@echo "built:$$(for p in $$($(GO) list -f '{{if eq .Name "main"}}{{.Dir}}{{end}}' $(PKGS)); do printf ' $(BUILD_BIN)/%s' $${p##*/}; done)"

test: deps browser-deps ## lint, check generated code, run every unit and integration test against the real stack
	@$(MAKE) --no-print-directory lint proto-check
	$(MAKE) -C libs/infer check asan cuda-check leakcheck python python-check
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(PKGS)
	@for m in $(OUTSIDE_MODULES); do [ -f $$m/go.mod ] || continue; echo "go test ./$$m/..."; \
	  (cd $$m && GOWORK=off $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...) || exit 1; done
	@$(MAKE) --no-print-directory bench BENCH_FLAGS=-short BENCH_OUT=$$(mktemp -d)/results.json

lint: tools ## gofmt, go vet and buf lint over every module
	@out=$$(gofmt -l $(MODULE_DIRS) $(wildcard $(OUTSIDE_MODULES))); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@for m in $(OUTSIDE_MODULES); do [ -f $$m/go.mod ] || continue; (cd $$m && GOWORK=off $(GO) vet ./...) || exit 1; done
	cd proto && buf lint

proto: tools ## regenerate the Go code of proto/spool/v1
	cd proto && buf lint && buf generate

proto-check: tools ## fail if the committed generated code differs from a fresh generation
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	cd proto && buf generate --output $$tmp; \
	diff -r --exclude='*.proto' $$tmp/spool spool >/dev/null || { \
	  echo "proto-check: generated code is stale; run 'make proto' and commit:"; \
	  diff -r --exclude='*.proto' $$tmp/spool spool | head -40; exit 1; }; \
	echo "proto-check: generated code is current"

devstack: deps ## run NATS, Postgres and MinIO in the foreground and print their SPOOL_* variables
	$(GO) run ./libs/devstack/cmd/spool-devstack -dir $(ROOT)/.spool/devstack

demo: deps build ## the main jobs through the whole system: a minute of 720p to out/demo.mp4 and a talking head with sound to out/demo-talk.mp4, then the dashboard until Ctrl-C
	$(BUILD_BIN)/spoolctl dev --demo out/demo.mp4

# Benchmarks: `make bench` runs them all, `make bench BENCH=infer` one. Each
# prints a table and merges its figures into $(BENCH_OUT). load runs the
# services as processes from $(BUILD_BIN), so it runs `make build` first.
BENCHES    := infer python handoff dispatch busy worker-overhead scaling stitch upload audio overhead critical-path throughput load
BENCH      ?= $(BENCHES)
BENCH_OUT  ?= $(ROOT)/bench/results.json
BENCH_FLAGS ?=
bench: ## run the benchmarks (BENCH=id for one) and write bench/results.json
	@for b in $(BENCH); do case " $(BENCHES) " in *" $$b "*) ;; \
	  *) echo "make bench: no benchmark '$$b' yet; available: $(BENCHES)" >&2; exit 2;; esac; done
	@case " $(BENCH) " in *" infer "*) $(GO) run ./libs/infer/cmd/spool-infer-bench $(BENCH_FLAGS) -o $(BENCH_OUT);; esac
	@case " $(BENCH) " in *" python "*) $(MAKE) --no-print-directory tiny-model && $(MAKE) --no-print-directory -C libs/infer python >/dev/null && \
	  $(GO) run ./libs/infer/cmd/spool-python-bench $(BENCH_FLAGS) -o $(BENCH_OUT);; esac
	@for b in handoff dispatch; do case " $(BENCH) " in *" $$b "*) \
	  $(GO) run ./services/dispatcher/cmd/spool-dispatch-bench -only $$b $(BENCH_FLAGS) -o $(BENCH_OUT);; esac; done
	@for b in busy worker-overhead scaling; do case " $(BENCH) " in *" $$b "*) \
	  $(GO) run ./services/worker/cmd/spool-worker-bench -only $${b#worker-} $(BENCH_FLAGS) -o $(BENCH_OUT);; esac; done
	@case " $(BENCH) " in *" stitch "*) $(GO) run ./services/stitcher/cmd/spool-stitch-bench $(BENCH_FLAGS) -o $(BENCH_OUT);; esac
	@case " $(BENCH) " in *" upload "*) $(GO) run ./services/gateway/cmd/spool-upload-bench $(BENCH_FLAGS) -o $(BENCH_OUT);; esac
	@case " $(BENCH) " in *" audio "*) $(GO) run ./services/spoolctl/cmd/spool-audio-bench $(BENCH_FLAGS) -o $(BENCH_OUT);; esac
	@for b in overhead critical-path throughput; do case " $(BENCH) " in *" $$b "*) \
	  $(GO) run ./services/spoolctl/cmd/spool-e2e-bench -only $$b $(BENCH_FLAGS) -o $(BENCH_OUT);; esac; done
	@case " $(BENCH) " in *" load "*) $(MAKE) --no-print-directory build >/dev/null && \
	  $(GO) run ./services/spoolctl/cmd/spool-load-bench $(BENCH_FLAGS) -bin $(BUILD_BIN) -o $(BENCH_OUT);; esac
	@echo "results: $(BENCH_OUT)"

# The chaos suite (services/spoolctl/chaos): every part a process of its own
# (a three-node NATS cluster, Postgres, MinIO, two dispatchers, two
# stitchers, the gateway, four workers) under a seeded monkey of faults, then
# every video checked against render --local and the recovery times
# tabled. SEED=<n> replays a run; without one a seed is drawn and printed.
# The short form runs in `make test` (go test ./services/spoolctl/chaos).
SEED        ?= 0
CHAOS_OUT   ?= $(ROOT)/chaos/results.json
CHAOS_FLAGS ?=
chaos: build ## the chaos suite: every service a process, seeded faults, every video checked (SEED=<n> replays a run; writes chaos/results.json)
	$(BUILD_BIN)/spool-chaos -seed $(SEED) -bin $(BUILD_BIN) -o $(CHAOS_OUT) $(CHAOS_FLAGS)

# Fuzzing every way in: the HTTP API from its own OpenAPI document with
# schemathesis (the long form of services/gateway/apifuzz's test: 500
# examples an operation, a seed of its own, stateful sequences; its short
# form runs in `make test`), then every Go fuzz target of the workspace
# (each func FuzzX of a _test.go), FUZZTIME each, one after the other (go
# test fuzzes one target a run). A crash fails it and leaves the input in
# the package's testdata/fuzz/FuzzX/: fix the code and commit the file,
# which `go test` then runs with the seeds. FUZZ=api, or FUZZ=FuzzKeys,
# runs one. Each line of the closing table is a target, its executions and
# its outcome.
FUZZTIME ?= 60s
FUZZ     ?= all
fuzz: deps ## fuzz every way in: the HTTP API with schemathesis (long form), then each Go fuzz target for FUZZTIME (FUZZ=api or FUZZ=<FuzzX> for one)
	@if [ "$(FUZZ)" = all ] || [ "$(FUZZ)" = api ]; then \
	  echo "go test ./services/gateway/apifuzz -run '^TestSchemathesis$$' -v -args -long"; \
	  $(GO) test -count=1 -timeout 90m -run '^TestSchemathesis$$' -v ./services/gateway/apifuzz -args -long; fi
	@table=$$(mktemp); trap 'rm -f $$table' EXIT; failed=0; \
	for d in $$(for m in $(MODULE_DIRS); do grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' $$m; done | xargs -r -n1 dirname | sort -u); do \
	  for t in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' $$d/*_test.go | cut -d' ' -f2 | cut -d'(' -f1); do \
	    [ "$(FUZZ)" = all ] || [ "$(FUZZ)" = "$$t" ] || continue; \
	    pkg=./$${d#$(ROOT)/}; echo "go test $$pkg -run '^$$' -fuzz '^$$t$$' -fuzztime $(FUZZTIME)"; \
	    out=$$(cd $$d && $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s . 2>&1) && res=ok || { res=FAIL; failed=1; }; \
	    echo "$$out" | tail -n 20; \
	    execs=$$(echo "$$out" | grep -oE 'execs: [0-9]+' | tail -n 1 | cut -d' ' -f2); \
	    printf '%-24s %-22s %10s execs  %s\n' "$$pkg" "$$t" "$${execs:-0}" "$$res" >> $$table; done; done; \
	echo; echo "fuzzed for $(FUZZTIME) each:"; cat $$table; exit $$failed

images: ## build the container images (needs a Docker engine with BuildKit)
	docker compose -f docker/compose.yaml --profile cpu --profile gpu build

stack: ## the whole system in containers with a CPU worker (needs a Docker engine)
	docker compose -f docker/compose.yaml --profile cpu up --build

clean: ## remove build outputs and local state
	rm -rf .spool bin bench/results.json
