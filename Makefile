# Peal: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
DATA ?= $(CURDIR)/target/demo-data
LISTEN ?= 127.0.0.1:7300
TAURI := $(CURDIR)/ui/node_modules/.bin/tauri

.PHONY: run run-server test deps build package ui-check bench fuzz fmt lint screenshots windows package-windows

deps:
	@scripts/ensure-deps.sh
	@scripts/ensure-bench-deps.sh

build: deps
	$(CARGO) build --workspace --bins

## Builds and starts the desktop app on "this computer" (a Peal server inside
## the app, with the Echo contact).
run: build
	@scripts/run-desktop.sh target/debug/peal-desktop

## The signaling server alone with demo users and the echo bot, for the CLI.
run-server: build
	@scripts/run-demo.sh "$(DATA)" "$(LISTEN)"

## The .deb (Tauri's bundler): target/release/bundle/deb/ (make test makes
## the debug one, PACKAGE_PROFILE=--debug, from the build it already has).
PACKAGE_PROFILE ?=
package: deps
	$(TAURI) build $(PACKAGE_PROFILE) --bundles deb --ci

## The page: type-checked against the generated bindings, and its units.
ui-check: deps
	cd ui && node_modules/.bin/tsc -p . && node_modules/.bin/vitest run

## Installs what it needs, then runs every test.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@# The signaling-only CLI (no codecs) builds too: what a target without
	@# libvpx and opus gets (issue 14).
	$(CARGO) clippy -p peal-cli --no-default-features -- -D warnings
	$(MAKE) --no-print-directory ui-check
	$(MAKE) --no-print-directory package PACKAGE_PROFILE=--debug
	$(CARGO) build --workspace --bins --tests
	@# Windows (issue 14): the workspace's binaries cross-built (the script
	@# installs mingw-w64, nasm and the Rust target, and builds libvpx and
	@# opus for Windows from Debian's sources), run under wine by tests/windows.rs.
	scripts/windows.sh build --workspace --bins
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi

## Windows, cross-built here (x86_64-pc-windows-gnu, mingw-w64; libvpx and
## libopus for the target from Debian's source packages, built static):
## peal-server.exe, peal.exe and peal-desktop.exe (with WebView2Loader.dll)
## in target/x86_64-pc-windows-gnu/release/; package-windows adds the
## installer (makensis) in its bundle/nsis/. See scripts/windows.sh;
## WINDOWS_ARGS overrides what `make windows` builds.
WINDOWS_ARGS ?=
windows:
	scripts/windows.sh build $(WINDOWS_ARGS)

package-windows:
	scripts/windows.sh package

## Benchmarks (release build), each beside its baseline in the same run:
## ring, throughput, connections, media, desktop; a table at the end and
## target/bench/<scenario>.json. One scenario: make bench BENCH=ring.
## `make test` runs them all at a tiny size (crates/peal-bench/tests/tiny.rs).
BENCH ?= all
bench: deps
	$(CARGO) build --release --workspace --bins
	target/release/peal-bench $(BENCH) $(BENCH_ARGS)

## Fuzzing (cargo-fuzz on nightly, installed on first use; make test stays on
## stable): every target in crates/peal-fuzz for FUZZ_SECS each (default
## 10 min), one after another; a crash leaves its input in
## crates/peal-fuzz/artifacts/. One target: make fuzz FUZZ_TARGETS=client_frame.
FUZZ_SECS ?= 600
FUZZ_TARGETS ?=
fuzz:
	scripts/fuzz.sh $(FUZZ_SECS) $(FUZZ_TARGETS)

## The README's screenshots: the end-to-end tests take them (target/e2e/),
## this copies the ones the README shows into ui/screenshots/.
SHOTS := ring-01-contacts ring-02-incoming-window ring-03-call join-01-form \
	dark-01-contacts dark-02-settings dark-03-incoming-window
screenshots: deps
	$(CARGO) build --workspace --bins --tests
	@# Windows (issue 14): the workspace's binaries cross-built (the script
	@# installs mingw-w64, nasm and the Rust target, and builds libvpx and
	@# opus for Windows from Debian's sources), run under wine by tests/windows.rs.
	scripts/windows.sh build --workspace --bins
	$(CARGO) test -p peal-tests --test desktop -- the_cli_rings_us an_invite_link with_the_system_in_dark
	mkdir -p ui/screenshots
	for s in $(SHOTS); do cp target/e2e/$$s.png ui/screenshots/; done

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets
