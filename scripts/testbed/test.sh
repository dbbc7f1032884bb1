#!/usr/bin/env bash
# Run the test bed's own tests (testbed/tests/) against a fresh local bed:
# builds or reuses the cached control plane and Garage, builds the workspace
# binaries pods run (ferrocache-node) and the stand-in, starts the bed,
# runs the ignored tests one at a time, and stops the bed even on failure
# (keeping its logs in $FERROCACHE_TESTBED_DIR when a test failed).
#
#   scripts/testbed/test.sh [extra cargo test args after --, e.g. a test name]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$TESTBED_SCRIPTS/build-kube.sh" >/dev/null
"$TESTBED_SCRIPTS/install-garage.sh" >/dev/null
cd "$TESTBED_REPO"
tb_log "building ferrocache-node, the stand-in and the tests"
cargo build -q -p ferrocache-node --bin ferrocache-node
cargo build -q -p ferrocache-testbed --bins --tests

exports="$("$TESTBED_SCRIPTS/up.sh")"
eval "$exports"
status=0
cargo test -q -p ferrocache-testbed -- --ignored --test-threads=1 "$@" || status=$?
if ((status != 0)); then
    tb_log "tests failed; keeping the bed's logs in $FERROCACHE_TESTBED_DIR"
    FERROCACHE_TESTBED_KEEP=1 "$TESTBED_SCRIPTS/down.sh"
else
    "$TESTBED_SCRIPTS/down.sh"
fi
exit "$status"
