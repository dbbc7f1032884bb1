#!/usr/bin/env bash
# Run everything that needs a cluster against a fresh local bed: the test
# bed's own tests (testbed/tests/), the operator's end-to-end tests
# (operator/tests/e2e/) and the Helm chart's tests with a real install
# (tests/chart/). Builds or reuses the cached control plane and Garage, builds
# the workspace binaries pods run, starts the bed, runs the ignored tests one
# at a time, and stops the bed even on failure (keeping its logs in
# $FERROCACHE_TESTBED_DIR when a test failed).
#
#   scripts/testbed/test.sh [extra cargo test args after --, e.g. a test name]
#
# With arguments only the cargo suites run, each with those arguments.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$TESTBED_SCRIPTS/build-kube.sh" >/dev/null
"$TESTBED_SCRIPTS/install-garage.sh" >/dev/null
cd "$TESTBED_REPO"
tb_log "building ferrocache-node, the operator, the stand-in and the tests"
cargo build -q -p ferrocache-node --bin ferrocache-node
cargo build -q -p ferrocache-operator --bins --tests
cargo build -q -p ferrocache-testbed --bins --tests

exports="$("$TESTBED_SCRIPTS/up.sh")"
eval "$exports"
status=0
tb_log "the test bed's own tests"
cargo test -q -p ferrocache-testbed -- --ignored --test-threads=1 "$@" || status=$?
tb_log "the operator's end-to-end tests (operator log: $FERROCACHE_TESTBED_DIR/e2e-operator.log)"
cargo test -q -p ferrocache-operator --test e2e -- --ignored --test-threads=1 "$@" || status=$?
if (($# == 0)); then
    tb_log "the Helm chart's tests, with an install into the bed"
    FERROCACHE_CHART_INSTALL=1 scripts/chart/test.sh -q || status=$?
fi
if ((status != 0)); then
    tb_log "tests failed; keeping the bed's logs in $FERROCACHE_TESTBED_DIR"
    FERROCACHE_TESTBED_KEEP=1 "$TESTBED_SCRIPTS/down.sh"
else
    "$TESTBED_SCRIPTS/down.sh"
fi
exit "$status"
