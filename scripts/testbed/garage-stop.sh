#!/usr/bin/env bash
# Stop the Garage started by garage-start.sh [DIR] and check its ports are free.
# The data stays in DIR (down.sh removes the whole run directory).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="${1:-$TESTBED_RUN_DIR/garage}"
tb_stop "$DIR" garage 10
for port in "$GARAGE_S3_PORT" "$GARAGE_RPC_PORT" "$GARAGE_ADMIN_PORT"; do
    tb_wait_for "port $port to be free" 10 bash -c "! ss -Hltn 'sport = :$port' | grep -q ."
done
rm -f "$DIR/env"
tb_log "garage stopped"
