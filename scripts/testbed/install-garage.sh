#!/usr/bin/env bash
# Install Garage (S3-compatible object store) into a cache outside the clone:
#   ~/.cache/ferrocache/garage-<version>/bin/garage
# Idempotent: exits at once when the binary exists. Prints the binary path last.
set -euo pipefail

CACHE_ROOT="${FERROCACHE_CACHE_DIR:-$HOME/.cache/ferrocache}"
GARAGE_VERSION="${FERROCACHE_GARAGE_VERSION:-2.5.0}"
ROOT="$CACHE_ROOT/garage-$GARAGE_VERSION"
BIN="$ROOT/bin/garage"

log() { echo "[install-garage] $*" >&2; }

if [[ -x "$BIN" ]]; then
    log "cached binary present: $BIN"
    echo "$BIN"
    exit 0
fi

log "cargo install garage $GARAGE_VERSION (9 to 13 minutes on 2 cores)"
start=$(date +%s)
# A target dir of its own so the build never waits on the workspace's target lock.
CARGO_TARGET_DIR="$CACHE_ROOT/build/garage-target" \
    cargo install garage --locked --version "$GARAGE_VERSION" --root "$ROOT" >&2
log "installed in $(( $(date +%s) - start )) s"
echo "$BIN"
