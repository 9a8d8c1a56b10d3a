# Peal: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
DATA ?= $(CURDIR)/target/demo-data
LISTEN ?= 127.0.0.1:7300

.PHONY: run test deps build bench fmt lint

deps:
	@scripts/ensure-deps.sh

build: deps
	$(CARGO) build --workspace --bins

## Starts the signaling server with demo users and the echo bot, and prints how to ring it.
run: build
	@scripts/run-demo.sh "$(DATA)" "$(LISTEN)"

## Installs what it needs, then runs every test.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace --bins --tests
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi

## Benchmarks (release build): the ring path, then call media, on loopback.
bench: deps
	$(CARGO) build --release --workspace --bins --examples
	$(CARGO) run --release -p peal-tests --example ring_latency -- $(BENCH_ARGS)
	$(CARGO) run --release -p peal-tests --example media_connect -- $(MEDIA_BENCH_ARGS)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets
