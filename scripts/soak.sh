#!/usr/bin/env bash
# `make soak`: the bounded soak with faults (operator/tests/soak/) on a test bed
# of its own. A steady write load on a RedisCluster the operator manages,
# Backups one after another, faults injected at chosen moments (node, Garage,
# operator and API server killed, the operator also before a Backup's first
# status and during its deletion; S3 resets, lost responses, stalls (some past
# the node's attempt timeout) and 503 SlowDown through a fault proxy; corrupt and
# interrupted restores; local saves on a full disk and with failing fsync),
# every available backup restored and every key compared. Prints the table (and
# writes it to the report file).
#
#   scripts/soak.sh                      # about 25 minutes once everything is built
#   FERROCACHE_SOAK_RUNS=1 scripts/soak.sh
#   FERROCACHE_SOAK_SCENARIOS=s3-faults,restore-corrupt scripts/soak.sh
#
# Settings (environment), besides those of operator/tests/soak/main.rs:
#   FERROCACHE_SOAK_REPORT   where the Markdown table goes (default /tmp/ferrocache-soak-report.md)
#   FERROCACHE_SOAK_BED_DIR  the bed's run dir (default /tmp/ferrocache-soak-bed); the bed uses
#                            ports and pod addresses of its own (below), so a bed of `make test`
#                            can run at the same time
#   FERROCACHE_SOAK_OPERATOR_LOG  the operator's RUST_LOG (default info,kube=warn)
#   FERROCACHE_TESTBED_KEEP=1     keep the bed's directory (logs) after a successful soak too
# Needs root (the bed's pods, tmpfs mounts) and strace (installed with apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

export FERROCACHE_TESTBED_DIR="${FERROCACHE_SOAK_BED_DIR:-/tmp/ferrocache-soak-bed}"
export FERROCACHE_TESTBED_ETCD_PORT="${FERROCACHE_TESTBED_ETCD_PORT:-12379}"
export FERROCACHE_TESTBED_ETCD_PEER_PORT="${FERROCACHE_TESTBED_ETCD_PEER_PORT:-12380}"
export FERROCACHE_TESTBED_API_PORT="${FERROCACHE_TESTBED_API_PORT:-16443}"
export FERROCACHE_TESTBED_GARAGE_S3_PORT="${FERROCACHE_TESTBED_GARAGE_S3_PORT:-13900}"
export FERROCACHE_TESTBED_GARAGE_RPC_PORT="${FERROCACHE_TESTBED_GARAGE_RPC_PORT:-13901}"
export FERROCACHE_TESTBED_GARAGE_ADMIN_PORT="${FERROCACHE_TESTBED_GARAGE_ADMIN_PORT:-13903}"
export FERROCACHE_KUBELET_POD_CIDR="${FERROCACHE_KUBELET_POD_CIDR:-198.19.0.0/16}"
export FERROCACHE_SOAK_REPORT="${FERROCACHE_SOAK_REPORT:-/tmp/ferrocache-soak-report.md}"
unset KUBECONFIG

log() { echo "[soak] $*" >&2; }

scripts/testbed/build-kube.sh >/dev/null
scripts/testbed/install-garage.sh >/dev/null
if ! command -v strace >/dev/null; then
    log "installing strace (fsync fault injection)"
    apt-get install -y -q strace >/dev/null
fi
log "building the node, the operator and the soak"
cargo build -q -p ferrocache-node --bin ferrocache-node
cargo build -q -p ferrocache-testbed --bin ferrocache-kubelet
cargo build -q -p ferrocache-operator --bins --test soak

stop_bed() {
    local status=$?
    if ((status != 0)); then
        log "the soak failed; keeping the bed's logs in $FERROCACHE_TESTBED_DIR"
        FERROCACHE_TESTBED_KEEP=1 scripts/testbed/down.sh || true
    else
        scripts/testbed/down.sh || true
    fi
}
eval "$(scripts/testbed/up.sh)"
trap stop_bed EXIT
log "bed up in $FERROCACHE_TESTBED_DIR; operator log: $FERROCACHE_TESTBED_DIR/soak-operator.log"
cargo test -q -p ferrocache-operator --test soak -- --ignored --nocapture --test-threads=1
log "table written to $FERROCACHE_SOAK_REPORT"
