# Orchard — every command a developer or CI needs.
#
#   make run    install what is missing, build the release site, serve on 127.0.0.1:3000
#   make test   everything CI checks: format, clippy (server and wasm), Rust tests
#               (SQLite always, PostgreSQL when it answers), Playwright on the release build
#   make dev    cargo leptos watch (installs the pinned cargo-leptos once, ~15 min)
#   make bench  benchmarks, printing figures and ratios against in-run baselines
#
# Nothing here downloads anything but packages from crates.io, npm and Debian.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

# Must equal the `wasm-bindgen` crate pinned with `=` in Cargo.toml (a mismatch is a hard error).
WASM_BINDGEN_VERSION := 0.2.130
CARGO_LEPTOS_VERSION := 0.3.11

# The server-side packages. They are built and linted together, never with `frontend`,
# whose `hydrate` feature must not merge into the server build.
SERVER_PKGS := -p apple -p simulator -p backend -p app -p server
# `app` is listed with frontend so clippy checks its `hydrate` build.
WASM_PKGS := -p frontend -p app

# PostgreSQL for the storage tests; used when it answers.
ORCHARD_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
PG_HOST_PORT := $(shell echo '$(ORCHARD_TEST_POSTGRES_URL)' | sed -E 's|^[a-z]+://([^@/]*@)?([^/?]*).*|\2|')

RELEASE_BIN := target/release/orchard
NPM := npm --no-audit --no-fund --loglevel=error

export PATH := $(HOME)/.cargo/bin:$(PATH)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run build site server dev test fmt-check clippy rust-tests e2e bench tools \
        tools-wasm tools-node tools-e2e clean

## ---- run -------------------------------------------------------------------------

run: build
	@mkdir -p data
	@echo
	@echo "  Orchard: http://127.0.0.1:3000   (data in ./data, Ctrl-C to stop)"
	@echo
	ORCHARD_SITE__ROOT=target/site $(RELEASE_BIN)

build: site server

site: tools-wasm tools-node
	./scripts/build-site.sh

server:
	cargo build --locked --release -p server

dev: tools-wasm tools-node
	@command -v cargo-leptos >/dev/null && cargo leptos --version | grep -q '$(CARGO_LEPTOS_VERSION)' || \
	  cargo install cargo-leptos --version $(CARGO_LEPTOS_VERSION) --locked --ignore-rust-version
	PATH="$(CURDIR)/tools/node_modules/.bin:$$PATH" cargo leptos watch

## ---- test ------------------------------------------------------------------------

test: fmt-check clippy rust-tests e2e

fmt-check:
	cargo fmt --all --check

clippy: tools-wasm
	cargo clippy --locked $(SERVER_PKGS) --all-targets -- -D warnings
	cargo clippy --locked $(WASM_PKGS) --target wasm32-unknown-unknown -- -D warnings

# Tests run in release: the same build then serves the Playwright suite, and crypto,
# decoding and large simulated organizations run at real speed.
rust-tests:
	@if (exec 3<>/dev/tcp/$(subst :,/,$(PG_HOST_PORT))) 2>/dev/null; then \
	  echo "PostgreSQL answers at $(PG_HOST_PORT): running the postgres:: storage tests"; \
	  ORCHARD_TEST_POSTGRES_URL='$(ORCHARD_TEST_POSTGRES_URL)' \
	    cargo test --locked --release $(SERVER_PKGS); \
	else \
	  echo "!! PostgreSQL does not answer at $(PG_HOST_PORT): SKIPPING the postgres:: storage tests"; \
	  cargo test --locked --release $(SERVER_PKGS) -- --skip postgres::; \
	fi

# Builds the release site and server, then runs every spec with JavaScript off and hydrated.
# The server binary comes from the same `cargo test` build (`--no-run` is a no-op after it).
e2e: tools-e2e site
	cargo test --locked --release $(SERVER_PKGS) --no-run
	cd end2end && CI=1 npx playwright test

## ---- bench -----------------------------------------------------------------------

# Benches are built with all of $(SERVER_PKGS) selected, as the tests are: the same feature
# set, so they reuse the test build instead of compiling every dependency again.
bench:
	cargo bench --locked $(SERVER_PKGS) --bench paging
	@if (exec 3<>/dev/tcp/$(subst :,/,$(PG_HOST_PORT))) 2>/dev/null; then \
	  export ORCHARD_TEST_POSTGRES_URL='$(ORCHARD_TEST_POSTGRES_URL)'; \
	else \
	  echo "!! PostgreSQL does not answer at $(PG_HOST_PORT): search and ingest measured on SQLite only"; \
	fi; \
	cargo bench --locked $(SERVER_PKGS) --bench search && \
	cargo bench --locked $(SERVER_PKGS) --bench ingest && \
	cargo bench --locked $(SERVER_PKGS) --bench http

## ---- tools -----------------------------------------------------------------------

tools: tools-wasm tools-node tools-e2e

# The wasm target and the wasm-bindgen CLI at exactly the crate's version.
tools-wasm:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || \
	  rustup target add wasm32-unknown-unknown
	@[ "$$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)" ] || \
	  cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force

# Node.js (for npm's binaryen wasm-opt and for precompressing assets).
tools-node:
	@command -v npm >/dev/null || { apt-get update && apt-get install -y nodejs npm; }
	@[ -x tools/node_modules/.bin/wasm-opt ] || (cd tools && $(NPM) ci)

# Debian's Chromium and the Playwright packages (no browser download).
tools-e2e: tools-node
	@[ -x /usr/bin/chromium ] || { apt-get update && apt-get install -y chromium; }
	@[ -d end2end/node_modules/@playwright/test ] || (cd end2end && $(NPM) ci)

clean:
	cargo clean
	rm -rf target/site end2end/test-results end2end/playwright-report
