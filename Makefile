# ferrocache: one target per workflow. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help demo test unit lint bench deps fmt crds testbed testbed-up testbed-down testbed-test fuzz suite soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: ## install system packages the tests need (Redis 7 as the peer)
	@scripts/install-deps.sh

demo: deps ## run the main job on an embedded default (KEEP=1 leaves it running)
	@$(if $(KEEP),FERROCACHE_DEMO_KEEP=$(KEEP) )scripts/demo.sh

test: deps testbed lint ## the whole test suite (what CI runs)
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc
	scripts/testbed/test.sh
	FERROCACHE_NODE_BIN=$(CURDIR)/target/debug/ferrocache-node scripts/redis-suite.sh --check
	scripts/fuzz/run.sh $(or $(FUZZ_SECONDS),30)

unit: ## unit tests only (no servers started)
	$(CARGO) test --workspace --lib

lint: ## formatting and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

crds: ## regenerate crds/ from the Rust types (commit the result)
	$(CARGO) run -q -p ferrocache-operator --bin crdgen -- crds
	@if [ -x scripts/chart/sync-crds.sh ]; then scripts/chart/sync-crds.sh; fi

bench: deps ## benchmarks against Redis 7 in the same run; prints a table of ratios
	$(CARGO) build --release -p ferrocache-node
	python3 bench/run.py

testbed: ## build (once, cached) the control plane binaries and Garage
	scripts/testbed/build-kube.sh
	scripts/testbed/install-garage.sh

testbed-up: testbed ## start the local control plane, kubelet stand-in and Garage; prints exports
	@$(CARGO) build -p ferrocache-node -p ferrocache-operator -p ferrocache-testbed --quiet
	@scripts/testbed/up.sh

testbed-down: ## stop everything testbed-up started
	@scripts/testbed/down.sh

testbed-test: ## tests of the test bed itself
	scripts/testbed/test.sh

suite: deps ## Redis 7.0.15's own test suite against the node and real Redis side by side (fails under 95% of Redis)
	scripts/redis-suite.sh --check

fuzz: ## fuzz the RESP parser, RDB loader and RESTORE decoder (FUZZ_SECONDS per target, default 60)
	scripts/fuzz/run.sh $(or $(FUZZ_SECONDS),60)

soak: testbed ## the bounded soak with faults, on a bed of its own; prints the loss table (docs/reliability.md)
	scripts/soak.sh
