#!/usr/bin/env bash
# Runs units of Redis 7.0.15's own test suite (Debian's redis source
# package) against ferrocache-node, or against a real redis-server with
# --peer redis, and prints "N passed, N failed" per unit from the suite's
# per-test lines.
#
#   scripts/redis-suite.sh [--peer node|redis] [unit ...]
#
# Defaults to the units listed below. The source is fetched once with
# `apt-get source redis` (deb-src enabled) and cached outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

peer=node
if [[ "${1:-}" == "--peer" ]]; then
    peer=$2
    shift 2
fi
units=("$@")
if [[ ${#units[@]} -eq 0 ]]; then
    units=(unit/type/string unit/type/incr unit/type/list unit/type/hash unit/type/set unit/type/zset
        unit/keyspace unit/expire unit/protocol unit/scan unit/info unit/multi)
fi

version=7.0.15
cache=${FERROCACHE_CACHE:-$HOME/.cache/ferrocache}
source_dir="$cache/redis-$version-src"
if [[ ! -x "$source_dir/runtest" ]]; then
    echo "==> fetching the Redis $version source (apt-get source redis)" >&2
    sources=/etc/apt/sources.list.d/debian.sources
    if [[ -f $sources ]] && ! grep -q 'deb-src' "$sources"; then
        sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
        apt-get update -qq
    fi
    command -v tclsh >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcl >/dev/null
    work=$(mktemp -d)
    (cd "$work" && apt-get source -qq redis >/dev/null 2>&1)
    mkdir -p "$cache"
    rm -rf "$source_dir"
    mv "$work"/redis-$version "$source_dir"
    rm -rf "$work"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
workdir=$(mktemp -d)
if [[ $peer == node ]]; then
    cargo build --release -q -p ferrocache-node
    "$repo/target/release/ferrocache-node" --port "$port" --bind 127.0.0.1 --dir "$workdir" --save "" \
        >"$workdir/server.log" 2>&1 &
else
    redis-server --port "$port" --bind 127.0.0.1 --dir "$workdir" --save "" --appendonly no \
        >"$workdir/server.log" 2>&1 &
fi
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
done

total_passed=0
total_failed=0
printf '%-22s %8s %8s %8s\n' unit passed failed ignored
for unit in "${units[@]}"; do
    log="$workdir/$(echo "$unit" | tr / _).log"
    (cd "$source_dir" && TERM=dumb timeout 600 ./runtest --host 127.0.0.1 --port "$port" --singledb --durable \
        --ignore-encoding --ignore-digest --timeout 60 \
        --tags "-needs:debug -needs:repl -needs:save -needs:config-maxmemory" \
        --single "$unit" >"$log" 2>&1) || true
    passed=$(grep -c '^\[ok\]' "$log" || true)
    failed=$(grep -c '^\[err\]\|^\[exception\]' "$log" || true)
    ignored=$(grep -c '^\[ignore\]' "$log" || true)
    printf '%-22s %8d %8d %8d\n' "$unit" "$passed" "$failed" "$ignored"
    if [[ -n "${FERROCACHE_SUITE_LOGS:-}" ]]; then
        mkdir -p "$FERROCACHE_SUITE_LOGS"
        cp "$log" "$FERROCACHE_SUITE_LOGS/"
    fi
    grep '^\[err\]\|^\[exception\]' "$log" | sed 's/^/    /' >&2 || true
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    # A crashed server ends the run for the remaining units.
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "the server under test died during $unit" >&2
        exit 1
    fi
done
echo "$total_passed passed, $total_failed failed"
