# Pulse — the front door. CI runs `make lint test` (see .ci/run) on a fresh clone.
#
# Every target first installs the Debian packages the build needs, so a fresh machine with only
# the Rust toolchain is enough.

SHELL := /bin/bash
CARGO ?= cargo
SYSTEM_PACKAGES := protobuf-compiler librocksdb-dev libclang-dev clang
# The sample shipped in the repo and the instant it is scored at (2026-03-31T00:00:00Z).
SAMPLE_EVENTS := testdata/sample-events.jsonl
SAMPLE_AS_OF_MS := 1774915200000

.PHONY: all deps build test lint fmt bench run clean

all: build

## deps: install the missing system packages (apt-get; root or sudo)
deps:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## build: compile every crate, test and bench
build: deps
	$(CARGO) build --workspace --all-targets

## test: run every test
test: deps
	$(CARGO) test --workspace --no-fail-fast

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

## run: score the sample events offline and print one activity per customer
run: deps
	$(CARGO) run --release -p pulsectl -- score --events $(SAMPLE_EVENTS) --as-of-ms $(SAMPLE_AS_OF_MS)

clean:
	$(CARGO) clean
