# CAD AI Platform backend. On a fresh machine: `make run` (the whole system locally) and
# `make test` (every test). See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := source infra/scripts/env.sh
ROLE ?= engineer
JOBS ?= 2
FUNCTIONS := users-api files-api jobs-api admin-api cache-warmer file-processing-worker \
	ai-training-worker search-indexing-worker notifications-worker reports-worker alarm-notifier

.PHONY: help run up down token test test-rust test-dashboard check-template lint fmt services build-lambda clean-test-dbs

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

services: ## Start PostgreSQL, Redis and moto if they are not running
	@infra/scripts/services.sh

run: services ## Run the whole system in the foreground (API on http://127.0.0.1:3000)
	@$(ENV) && cargo build -q -j $(JOBS) -p local && exec "$$CARGO_TARGET_DIR/debug/local-server" serve

up: services ## Run the whole system in the background; `make down` stops it
	@infra/scripts/up.sh

down: ## Stop the background system started by `make up`
	@infra/scripts/down.sh

token: ## Print a bearer token for the demo user of ROLE (admin, engineer, viewer)
	@$(ENV) && cargo build -q -j $(JOBS) -p local && "$$CARGO_TARGET_DIR/debug/local-server" token $(ROLE)

test: services clean-test-dbs test-rust test-dashboard check-template ## Run every test and check

test-rust: ## The Rust unit and integration tests (needs `make services`)
	@$(ENV) && cargo test --workspace --no-fail-fast -j $(JOBS)

test-dashboard: ## The admin dashboard rendered and checked in headless Chromium (installs chromium if missing)
	@infra/scripts/dashboard_check.sh

check-template: ## sam validate --lint, and cfn-lint on the offline-transformed template
	@command -v sam >/dev/null || python3 -m pip install --quiet aws-sam-cli
	@python3 infra/scripts/check_template.py

lint: ## rustfmt check and clippy with warnings as errors
	@$(ENV) && cargo fmt --all -- --check && cargo clippy --workspace --all-targets -j $(JOBS) -- -D warnings

fmt: ## Format the code
	@cargo fmt --all

clean-test-dbs: ## Drop databases left behind by interrupted test runs
	@$(ENV) && psql -qAt -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 'itest\_%'" \
	  | while read -r db; do psql -q -d postgres -c "DROP DATABASE IF EXISTS \"$$db\" WITH (FORCE)"; done

build-lambda: ## Release builds of every function for Lambda (arm64), as `sam build` does
	@command -v cargo-lambda >/dev/null || python3 -m pip install --quiet cargo-lambda
	@$(ENV) && cargo lambda build --release --arm64 -j $(JOBS) $(addprefix -p ,$(FUNCTIONS))

.PHONY: bench bench-baseline

bench: services ## The guide's performance benchmarks as one table (infra/bench/RESULTS.md); BASELINE=update stores a baseline
	@$(ENV) && python3 infra/bench/bench.py $(if $(filter update,$(BASELINE)),--update-baseline)

bench-baseline: services ## Run `make bench` and store its results as infra/bench/baseline.json
	@$(ENV) && python3 infra/bench/bench.py --update-baseline
