# Pulse — the front door. CI runs `make lint test` (see .ci/run) on a fresh clone.
#
# Every target first installs the Debian packages the build needs, so a fresh machine with only
# the Rust toolchain is enough.

SHELL := /bin/bash
CARGO ?= cargo
SYSTEM_PACKAGES := protobuf-compiler librocksdb-dev libclang-dev clang iproute2
# What `make compare` measures Pulse against, and the tools its script uses.
COMPARE_PACKAGES := etcd-server etcd-client redis-server redis-tools python3
# What `make validate-deploy` needs: a Python venv for kubernetes-validate and PyYAML.
DEPLOY_PACKAGES := python3-venv python3-pip
# The sample shipped in the repo and the instant it is scored at (2026-03-31T00:00:00Z).
SAMPLE_EVENTS := testdata/sample-events.jsonl
SAMPLE_AS_OF_MS := 1774915200000

# Where `make run` serves and keeps its data; PULSED_FLAGS adds flags (e.g. `--clock manual`).
LISTEN ?= 127.0.0.1:50051
DATA_DIR ?= ./data
PULSED_FLAGS ?=
# The release binaries (built together, so they share one build of the dependencies).
RELEASE_BIN := $${CARGO_TARGET_DIR:-target}/release

.PHONY: all deps build test validate-deploy lint fmt bench run run-sample ingest-sample score-sample load compare cluster cluster-add cluster-down clean

# Installs the Debian packages of $(1) that are missing (apt-get; root or sudo).
define apt_install
	@missing=""; \
	for p in $(1); do dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

all: build

## deps: install the missing system packages (apt-get; root or sudo)
deps:
	$(call apt_install,$(SYSTEM_PACKAGES))

## build: compile every crate, test and bench
build: deps
	$(CARGO) build --workspace --all-targets

## test: run every test (the deployment files first: they take seconds)
test: deps validate-deploy
	$(CARGO) test --workspace --no-fail-fast

## validate-deploy: check deploy/ (Kubernetes manifests against the schemas, compose file, image)
validate-deploy:
	$(call apt_install,$(DEPLOY_PACKAGES))
	deploy/validate.sh

## lint: formatting and clippy with warnings as errors (benches included, so they never rot)
lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## bench: criterion benchmarks (release profile)
bench: deps
	$(CARGO) bench -p pulse-benches

## run: build and start a standalone server in the foreground (Ctrl-C stops it)
run: deps
	$(CARGO) build --release -p pulsed -p pulsectl
	@echo "pulsed standalone: data in $(DATA_DIR), gRPC on $(LISTEN) (Ctrl-C to stop). From another shell:"
	@echo "  $(RELEASE_BIN)/pulsectl --addr $(LISTEN) health"
	@echo "  make ingest-sample   # $(RELEASE_BIN)/pulsectl --addr $(LISTEN) ingest --file $(SAMPLE_EVENTS)"
	@echo "  $(RELEASE_BIN)/pulsectl --addr $(LISTEN) get alice bob carol"
	@echo "  grpcurl -plaintext $(LISTEN) list   # server reflection"
	@echo
	$(RELEASE_BIN)/pulsed standalone --data-dir $(DATA_DIR) --listen $(LISTEN) $(PULSED_FLAGS)

## run-sample: like run, on a manual clock at the end of the sample (testdata/sample-clock.toml)
run-sample:
	$(MAKE) run DATA_DIR=./data/sample PULSED_FLAGS="--config testdata/sample-clock.toml"

## ingest-sample: send the sample events to the server of `make run`
ingest-sample: deps
	$(CARGO) build --release -p pulsed -p pulsectl
	$(RELEASE_BIN)/pulsectl --addr $(LISTEN) ingest --file $(SAMPLE_EVENTS)

## score-sample: score the sample events offline (no server) and print one activity per customer
score-sample: deps
	$(CARGO) build --release -p pulsed -p pulsectl
	$(RELEASE_BIN)/pulsectl score --events $(SAMPLE_EVENTS) --as-of-ms $(SAMPLE_AS_OF_MS)

## load: drive a pulse-loadgen scenario against a running gateway, e.g.
##   make load SCENARIO=ingest ADDR=127.0.0.1:50051 DURATION=60s CONCURRENCY=64
SCENARIO ?= get
ADDR ?= $(LISTEN)
DURATION ?= 30s
WARMUP ?= 5s
CONCURRENCY ?= 64
LOAD_FLAGS ?=
load: deps
	$(CARGO) build --release -p pulse-loadgen
	$(RELEASE_BIN)/pulse-loadgen --addr $(ADDR) --scenario $(SCENARIO) --duration $(DURATION) \
	  --warmup $(WARMUP) --concurrency $(CONCURRENCY) $(LOAD_FLAGS)

## compare: Pulse vs a 3-member etcd cluster vs Redis on this machine (bench/compare/run.sh)
compare: deps
	$(call apt_install,$(COMPARE_PACKAGES))
	DURATION=$(DURATION) WARMUP=$(WARMUP) CONCURRENCY=$(CONCURRENCY) bench/compare/run.sh

## cluster: start a local cluster in the background (one coordinator, NODES storage nodes on
##   loopback, data and logs in ./data/cluster), wait until it serves, print its gateways
NODES ?= 3
cluster: deps
	$(CARGO) build --release -p pulsed -p pulsectl
	deploy/local-cluster.sh up $(NODES)

## cluster-add: scale the cluster of `make cluster` out by one storage node
cluster-add:
	deploy/local-cluster.sh add

## cluster-down: stop the cluster of `make cluster`
cluster-down:
	deploy/local-cluster.sh down

clean:
	$(CARGO) clean
