#!/usr/bin/env bash
# `make demo`: the main job on an embedded default.
#
# Today this runs the cache node on its own: it builds the node (debug build,
# shared with the tests), starts it
# on a free loopback port, loads sample data of every type with redis-cli and
# redis-benchmark, shows what the node reports, and stops it. The Kubernetes
# part (local control plane, operator, Backup and Restore) joins as the
# operator lands; see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building ferrocache-node"
cargo build -p ferrocache-node --quiet
binary=target/debug/ferrocache-node

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
workdir=$(mktemp -d)
"$binary" --port "$port" --bind 127.0.0.1 --dir "$workdir" --maxmemory 256mb --maxmemory-policy allkeys-lru \
    > "$workdir/node.log" 2>&1 &
node_pid=$!
cleanup() {
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
cli() { redis-cli -p "$port" "$@"; }

echo "==> ferrocache-node listening on 127.0.0.1:$port"
echo "==> loading sample data"
cli set greeting "hello from ferrocache" >/dev/null
cli rpush queue job-1 job-2 job-3 >/dev/null
cli hset user:1 name Ada lang Rust >/dev/null
cli sadd tags cache kubernetes backup >/dev/null
cli zadd leaderboard 100 ada 90 grace 80 linus >/dev/null
cli set session:1 token EX 3600 >/dev/null
redis-benchmark -p "$port" -q -n 100000 -c 50 -P 16 -t set,get,lpush,hset,zadd -r 100000 2>/dev/null | tr '\r' '\n' | grep 'requests per second'

echo "==> what the node holds"
echo "greeting    = $(cli get greeting)"
echo "queue       = $(cli lrange queue 0 -1 | tr '\n' ' ')"
echo "leaderboard = $(cli zrange leaderboard 0 -1 withscores | tr '\n' ' ')"
echo "session TTL = $(cli ttl session:1) s"
cli info keyspace | grep '^db'
cli info memory | grep -E '^(used_memory_human|maxmemory_human|maxmemory_policy)'
echo "==> done (the node is stopped; run '$binary --port 6379' to keep one running)"
