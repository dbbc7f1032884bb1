#!/usr/bin/env bash
# Start a single-node Garage (S3) on 127.0.0.1 with one access key and one
# bucket, and print the exports an S3 client needs. Usable on its own (the
# node's S3 tests) or from up.sh.
#
#   scripts/testbed/garage-start.sh [DIR]     DIR defaults to $FERROCACHE_TESTBED_DIR/garage
#   eval "$(scripts/testbed/garage-start.sh)"
#
# Idempotent: if the Garage of DIR is running, it only prints the exports.
# Stop it with garage-stop.sh [DIR].
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="${1:-$TESTBED_RUN_DIR/garage}"
REGION="${FERROCACHE_TESTBED_S3_REGION:-garage}"
BUCKET="${FERROCACHE_TEST_BUCKET:-ferrocache-test}"

if tb_running "$DIR" garage && [[ -f "$DIR/env" ]]; then
    tb_log "garage already running in $DIR"
    cat "$DIR/env"
    exit 0
fi

GARAGE="$("$TESTBED_SCRIPTS/install-garage.sh")"
for port in "$GARAGE_S3_PORT" "$GARAGE_RPC_PORT" "$GARAGE_ADMIN_PORT"; do
    if tb_port_listening "$port"; then
        tb_die "port $port is already in use; stop whatever holds it (ss -ltnp 'sport = :$port')"
    fi
done

mkdir -p "$DIR/meta" "$DIR/data"
CONFIG="$DIR/garage.toml"
cat >"$CONFIG" <<TOML
metadata_dir = "$DIR/meta"
data_dir = "$DIR/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$GARAGE_RPC_PORT"
rpc_public_addr = "127.0.0.1:$GARAGE_RPC_PORT"
rpc_secret = "$(openssl rand -hex 32)"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$GARAGE_S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$GARAGE_ADMIN_PORT"
admin_token = "$(openssl rand -hex 32)"
TOML

garage() { "$GARAGE" -c "$CONFIG" "$@"; }

tb_log "starting garage in $DIR"
tb_start garage "$DIR" "$DIR" "$GARAGE" -c "$CONFIG" server
tb_wait_for "garage RPC" 30 garage status || { tail -n 20 "$DIR/garage.log" >&2; exit 1; }

NODE_ID="$(garage node id -q 2>/dev/null | cut -d@ -f1)"
[[ -n "$NODE_ID" ]] || tb_die "could not read the garage node id"
garage layout assign -z dc1 -c 1G "$NODE_ID" >/dev/null
garage layout apply --version 1 >/dev/null

KEY_ID="GK$(openssl rand -hex 12)"
SECRET="$(openssl rand -hex 32)"
garage key import --yes -n ferrocache-test "$KEY_ID" "$SECRET" >/dev/null
tb_wait_for "bucket creation" 30 garage bucket create "$BUCKET"
garage bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID" >/dev/null
tb_wait_for "garage S3 port" 30 tb_port_listening "$GARAGE_S3_PORT"

cat >"$DIR/env.tmp" <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$GARAGE_S3_PORT
export AWS_ACCESS_KEY_ID=$KEY_ID
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_REGION=$REGION
export FERROCACHE_TEST_BUCKET=$BUCKET
ENV
mv "$DIR/env.tmp" "$DIR/env"
tb_log "garage ready: S3 at http://127.0.0.1:$GARAGE_S3_PORT (path-style, region $REGION), bucket $BUCKET"
cat "$DIR/env"
