#!/usr/bin/env bash
# `make demo`: the main job on an embedded default, end to end, on this machine.
#
# Builds (once, cached) a local Kubernetes control plane and Garage (S3), builds
# the node and the operator, starts the test bed (scripts/testbed/up.sh) and the operator,
# then does what a user does with kubectl and the YAML files of examples/:
#   1. a RedisCluster `cache` in namespace ferrocache-demo, with an S3 Secret;
#   2. sample data of every type loaded with redis-cli --pipe;
#   3. a Backup of it to the bed's bucket, timed;
#   4. a Restore of that backup into a new cluster `cache-restored`, timed;
#   5. every key compared between the two clusters (type, value, expiry time);
#   6. a summary.
# Then it tears everything down, unless asked to keep it running.
#
# Settings (environment; `make demo KEEP=1` sets the first):
#   FERROCACHE_DEMO_KEEP=1   leave the bed, operator and clusters running, and say how to use them
#   FERROCACHE_DEMO_KEYS     how many sample keys to load (default 50000, plus a few large and readable ones)
#   FERROCACHE_DEMO_DIR      the demo's run dir: operator log, rendered manifests (default /tmp/ferrocache-demo)
#   FERROCACHE_TESTBED_DIR, FERROCACHE_CACHE_DIR, FERROCACHE_TESTBED_*_PORT: see scripts/testbed/
#   CARGO_TARGET_DIR         where cargo builds (default target/)
set -euo pipefail
cd "$(dirname "$0")/.."

NAMESPACE=ferrocache-demo
KEEP="${FERROCACHE_DEMO_KEEP:-0}"
KEYS="${FERROCACHE_DEMO_KEYS:-50000}"
DEMO_DIR="${FERROCACHE_DEMO_DIR:-/tmp/ferrocache-demo}"
BED_DIR="${FERROCACHE_TESTBED_DIR:-/tmp/ferrocache-testbed}"
CACHE_DIR="${FERROCACHE_CACHE_DIR:-$HOME/.cache/ferrocache}"
API_PORT="${FERROCACHE_TESTBED_API_PORT:-6443}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
NODE_IMAGE=ferrocache/ferrocache:dev
OPERATOR_LOG="$DEMO_DIR/operator.log"
OPERATOR_PID_FILE="$DEMO_DIR/operator.pid"
# Marks a bed that a `make demo KEEP=1` started, so the next demo stops it.
BED_MARKER="$DEMO_DIR/bed-started-by-demo"

stage() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
indent() { sed 's/^/    /'; }
# Build output, indented, with cargo's one line per crate compiled shown as a count.
progress() {
    awk '/^ *Compiling / { if (++crates % 20 == 0) printf "    ... %d crates compiled (%s)\n", crates, $2; fflush(); next }
         /^make\[[0-9]+\]: (Entering|Leaving) directory/ { next }
         { print "    " $0; fflush() }'
}
die() {
    printf 'demo: error: %s\n' "$*" >&2
    exit 1
}
k() { kubectl -n "$NAMESPACE" "$@"; }
# Milliseconds since the epoch, and a duration in seconds with one decimal.
now_ms() { echo $((${EPOCHREALTIME//[!0-9]/} / 1000)); }
seconds_since() {
    local elapsed=$(($(now_ms) - $1))
    printf '%d.%d s' $((elapsed / 1000)) $((elapsed % 1000 / 100))
}
alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

bed_started=0     # this run started the bed (or owns the one a KEEP run left)
operator_pid=""
namespace_used=0

# --- teardown, on success and on failure ------------------------------------------
stop_operator() {
    alive "$operator_pid" || return 0
    kill -TERM "$operator_pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while alive "$operator_pid" && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$operator_pid" 2>/dev/null || true
    wait "$operator_pid" 2>/dev/null || true
    rm -f "$OPERATOR_PID_FILE"
}

report_failure() {
    local status="$1"
    echo
    if ((status == 130)); then
        printf 'demo: interrupted\n' >&2
    else
        printf 'demo: FAILED (exit %s)\n' "$status" >&2
    fi
    if ((namespace_used)) && kubectl get --raw /readyz >/dev/null 2>&1; then
        k get redisclusters,backups,restores -o wide 2>&1 | indent >&2 || true
        # Pod logs go with the pods when the namespace is deleted: keep a copy.
        local pod_dir
        for pod_dir in "$BED_DIR"/kubelet/pods/"$NAMESPACE"_*; do
            [[ -d "$pod_dir" ]] || continue
            mkdir -p "$DEMO_DIR/pods/${pod_dir##*/}"
            cp "$pod_dir"/*.log "$DEMO_DIR/pods/${pod_dir##*/}/" 2>/dev/null || true
        done
    fi
    if [[ -s "$OPERATOR_LOG" ]]; then
        echo "    last lines of the operator log:" >&2
        tail -n 15 "$OPERATOR_LOG" | indent >&2
    fi
    {
        echo "    logs:"
        echo "      operator            $OPERATOR_LOG"
        [[ -d "$DEMO_DIR/pods" ]] && echo "      cluster node pods   $DEMO_DIR/pods/"
        [[ -d "$BED_DIR/logs" ]] && echo "      test bed daemons    $BED_DIR/logs/  (kept after the bed stops)"
        echo "      everything else     $DEMO_DIR/"
    } >&2
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    # A signal may land inside a function whose output is redirected (render >file).
    exec 1>&"$saved_stdout" 2>&"$saved_stderr"
    if ((status != 0)); then
        report_failure "$status"
    elif [[ "$KEEP" == 1 ]]; then
        ((bed_started)) && touch "$BED_MARKER"
        return 0
    fi
    if ((status == 0)); then stage "tearing down (make demo KEEP=1 keeps it running)"; else stage "cleaning up"; fi
    if ((namespace_used)) && alive "$operator_pid"; then
        # The operator is still up, so the Backup's finalizer deletes its objects from S3.
        kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait --timeout=90s 2>&1 | indent
    fi
    stop_operator
    if ((bed_started)); then
        if ((status == 0)); then
            scripts/testbed/down.sh 2>&1 | indent
        else
            FERROCACHE_TESTBED_KEEP=1 scripts/testbed/down.sh 2>&1 | indent
        fi
    elif [[ -n "${KUBECONFIG:-}" ]]; then
        note "the test bed was already running before the demo: left running (make testbed-down stops it)"
    fi
    if ((status == 0)); then
        rm -rf "$DEMO_DIR"
        stage "done"
    fi
    exit "$status"
}
exec {saved_stdout}>&1 {saved_stderr}>&2
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- what the demo needs ----------------------------------------------------------
[[ "$(id -u)" == 0 ]] || die "the local test bed needs root (it mounts volumes in namespaces and adds pod addresses to lo); run as root"
for tool in python3 cargo redis-cli curl; do
    command -v "$tool" >/dev/null || die "$tool is not installed (make deps installs redis-cli; the Rust toolchain and python3 come first)"
done
if ! command -v kubectl >/dev/null; then
    stage "installing kubectl (Debian's kubernetes-client)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
fi

# A previous `make demo KEEP=1` may have left its operator running: stop it.
if [[ -f "$OPERATOR_PID_FILE" ]]; then
    old_pid="$(cat "$OPERATOR_PID_FILE")"
    if alive "$old_pid" && grep -q ferrocache-operator "/proc/$old_pid/cmdline" 2>/dev/null; then
        stage "stopping the operator a previous demo left running (pid $old_pid)"
        kill -TERM "$old_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do alive "$old_pid" || break; sleep 0.2; done
        kill -KILL "$old_pid" 2>/dev/null || true
    fi
fi
[[ -f "$BED_MARKER" ]] && bed_marker_found=1 || bed_marker_found=0
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"

started=$SECONDS
if compgen -G "$CACHE_DIR/kubernetes-*/bin/kube-apiserver" >/dev/null; then
    stage "Kubernetes control plane: cached in $CACHE_DIR"
else
    stage "building the Kubernetes control plane (1.20, from Debian's source) once: about 8 min on 2 cores, cached in $CACHE_DIR"
fi
scripts/testbed/build-kube.sh 2>&1 >/dev/null | progress
if compgen -G "$CACHE_DIR/garage-*/bin/garage" >/dev/null; then
    stage "Garage (S3 server): cached in $CACHE_DIR"
else
    stage "building Garage (the S3 server) with cargo install once: about 16 min on 2 cores, cached in $CACHE_DIR"
fi
scripts/testbed/install-garage.sh 2>&1 >/dev/null | progress

if [[ -x $TARGET_DIR/debug/ferrocache-operator && -x $TARGET_DIR/debug/ferrocache-node ]]; then
    stage "building ferrocache-node and ferrocache-operator (debug, shared with the tests)"
else
    stage "building ferrocache-node and ferrocache-operator (debug, shared with the tests): first build, about 8 min on 2 cores"
fi
# As scripts/testbed/test.sh builds them, so the artifacts are the tests' own. The stand-in
# is built alone by up.sh: built together with the others, cargo unifies features and its
# rustls ends up with two crypto providers and none chosen.
{
    cargo build -p ferrocache-node --bin ferrocache-node
    cargo build -p ferrocache-operator --bins
} 2>&1 | progress
build_seconds=$((SECONDS - started))

# --- the bed ------------------------------------------------------------------------
if [[ -f "$BED_DIR/env" ]] && ss -Hltn "sport = :$API_PORT" | grep -q .; then
    if ((bed_marker_found)); then
        bed_started=1
        stage "reusing the test bed a previous demo left running in $BED_DIR"
    else
        stage "reusing the test bed already running in $BED_DIR (it stays up afterwards)"
        if pgrep -f 'ferrocache-operator' >/dev/null; then
            note "warning: another ferrocache-operator runs (the tests'?); it may act on the demo's resources too"
        fi
    fi
else
    bed_started=1
    stage "starting the local control plane, the kubelet stand-in and Garage"
fi
# up.sh prints the exports on stdout and its progress on stderr.
(umask 077 && scripts/testbed/up.sh 2>&1 >"$DEMO_DIR/bed.env" | progress)
# shellcheck disable=SC1091
source "$DEMO_DIR/bed.env"
: "${KUBECONFIG:?}" "${AWS_ENDPOINT_URL:?}" "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}" "${AWS_REGION:?}" "${FERROCACHE_TEST_BUCKET:?}"
export KUBECONFIG AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION FERROCACHE_TEST_BUCKET

stage "installing the CRDs (kubectl apply --server-side -f crds/)"
kubectl apply --server-side --force-conflicts -f crds/ | indent
kubectl wait --for=condition=Established --timeout=60s \
    crd/redisclusters.ferrocache.io crd/backups.ferrocache.io crd/restores.ferrocache.io >/dev/null

metrics_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
stage "starting ferrocache-operator (log: $OPERATOR_LOG, metrics: http://127.0.0.1:$metrics_port/metrics)"
NO_COLOR=1 RUST_LOG="${RUST_LOG:-info,kube=warn}" setsid "$TARGET_DIR/debug/ferrocache-operator" \
    --node-image "$NODE_IMAGE" --leader-election=false --metrics-address "127.0.0.1:$metrics_port" \
    >"$OPERATOR_LOG" 2>&1 </dev/null &
operator_pid=$!
echo "$operator_pid" >"$OPERATOR_PID_FILE"
for _ in $(seq 1 300); do
    alive "$operator_pid" || die "the operator exited at start"
    curl -sf "http://127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -sf "http://127.0.0.1:$metrics_port/readyz" >/dev/null || die "the operator did not become ready within 60 s"

# --- the user's part: kubectl and the YAML files of examples/ -----------------------
namespace_used=1
if kubectl get namespace "$NAMESPACE" >/dev/null 2>&1; then
    stage "deleting the namespace $NAMESPACE a previous demo left"
    kubectl delete namespace "$NAMESPACE" --wait --timeout=120s | indent
fi
stage "1. a RedisCluster: kubectl create namespace $NAMESPACE; kubectl apply -f examples/..."
kubectl create namespace "$NAMESPACE" | indent

# Every example must be valid as a user finds it, not only as the demo fills it in.
note "examples/*.yaml as a user finds them, checked by the API server (kubectl apply --dry-run=server):"
k apply --dry-run=server -f examples/ | sed 's/^/      /'

# The examples carry placeholders a user edits (bucket, endpoint, keys); fill in the bed's.
render() {
    python3 - "$1" <<'PY'
import json, os, re, sys
fields = {
    "bucket": "FERROCACHE_TEST_BUCKET", "endpoint": "AWS_ENDPOINT_URL", "region": "AWS_REGION",
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
}
pattern = re.compile(r"^(\s*)(%s):\s.*$" % "|".join(fields), re.M)
text = open(sys.argv[1]).read()
sys.stdout.write(pattern.sub(lambda m: f"{m[1]}{m[2]}: {json.dumps(os.environ[fields[m[2]]])}", text))
PY
}
render examples/s3-credentials-secret.yaml | k apply -f - | indent
k apply -f examples/rediscluster.yaml | indent

# Waits until KIND/NAME settles (its Progressing condition turns False: Available or
# Failed), and fails with the operator's message unless it is Available. `kubectl wait
# --for=condition=Available` alone would wait out its timeout on a failure.
wait_available() {
    local object="$1" timeout="$2"
    if ! k wait --for=condition=Progressing=False --timeout="$timeout" "$object" >/dev/null; then
        die "$object did not settle within $timeout: $(k get "$object" -o 'jsonpath={.status.conditions[?(@.type=="Available")].message}')"
    fi
    if [[ "$(k get "$object" -o 'jsonpath={.status.conditions[?(@.type=="Available")].status}')" != True ]]; then
        die "$object failed: $(k get "$object" -o 'jsonpath={.status.conditions[?(@.type=="Available")].message}')"
    fi
    k wait --for=condition=Available --timeout=10s "$object" | indent
}

# The address of a cluster's node behind its client Service. The bed has no kube-proxy,
# so read the Service's Endpoints (where the Service leads) rather than its cluster IP.
endpoint_of() {
    local address
    for _ in $(seq 1 240); do
        address="$(k get endpoints "$1" -o 'jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}' 2>/dev/null || true)"
        if [[ "$address" =~ ^[0-9a-f.:]+:[0-9]+$ ]]; then
            echo "$address"
            return 0
        fi
        sleep 0.5
    done
    die "the Service $1 has no ready endpoint"
}

cluster_start="$(now_ms)"
wait_available rediscluster/cache 180s
source_address="$(endpoint_of cache)"
note "cache is Available in $(seconds_since "$cluster_start"); its Service leads to $source_address"
source_cli=(redis-cli -h "${source_address%:*}" -p "${source_address##*:}")

stage "2. loading sample data: $KEYS keys of every type (strings, some with a TTL, lists, hashes, sets, sorted sets) with redis-cli --pipe"
load_start="$(now_ms)"
python3 scripts/demo/sample-data.py "$KEYS" | "${source_cli[@]}" --pipe >"$DEMO_DIR/load.log" 2>&1 ||
    die "redis-cli --pipe failed: $(tail -n 3 "$DEMO_DIR/load.log")"
grep -q 'errors: 0,' "$DEMO_DIR/load.log" || die "redis-cli --pipe reported errors: $(tail -n 3 "$DEMO_DIR/load.log")"
keys="$("${source_cli[@]}" DBSIZE)"
note "$keys keys in $(seconds_since "$load_start") ($(grep -o 'replies: [0-9]*' "$DEMO_DIR/load.log") from the node); $("${source_cli[@]}" INFO memory | tr -d '\r' | grep '^used_memory_human:' | sed 's/:/ /')"
note "GET greeting -> $("${source_cli[@]}" GET greeting); ZREVRANGE leaderboard 0 -1 WITHSCORES -> $("${source_cli[@]}" ZREVRANGE leaderboard 0 -1 WITHSCORES | paste -sd ' ')"

stage "3. a Backup to s3://$FERROCACHE_TEST_BUCKET (kubectl apply -f examples/backup.yaml)"
render examples/backup.yaml >"$DEMO_DIR/backup.yaml"
backup_start="$(now_ms)"
k apply -f "$DEMO_DIR/backup.yaml" | indent
wait_available backup/cache-backup-1 300s
backup_time="$(seconds_since "$backup_start")"
backup_field() { k get backup cache-backup-1 -o "jsonpath={$1}"; }
backup_bytes="$(backup_field .status.sizeBytes)"
backup_keys="$(backup_field .status.keys)"
backup_method="$(backup_field .status.method)"
backup_location="$(backup_field .status.location)"
backup_object="$(backup_field '.status.shards[0].object')"
backup_reason="$(backup_field '.status.shards[0].method')"
note "Available in $backup_time: $(backup_field '.status.conditions[?(@.type=="Available")].message')"

stage "4. a Restore into a new cluster cache-restored (kubectl apply -f examples/restore.yaml)"
restore_start="$(now_ms)"
k apply -f examples/restore.yaml | indent
wait_available restore/cache-restore-1 300s
restore_time="$(seconds_since "$restore_start")"
restored_address="$(endpoint_of cache-restored)"
note "Available in $restore_time: $(k get restore cache-restore-1 -o 'jsonpath={.status.conditions[?(@.type=="Available")].message}'); its Service leads to $restored_address"
restored_cli=(redis-cli -h "${restored_address%:*}" -p "${restored_address##*:}")

stage "5. checking every key: type, value and PEXPIRETIME in the source and in the restored cluster"
python3 scripts/demo/compare.py "$source_address" "$restored_address" --count-file "$DEMO_DIR/verified"
verified="$(cat "$DEMO_DIR/verified")"
note "restored: GET greeting -> $("${restored_cli[@]}" GET greeting); TTL session:1 -> $("${restored_cli[@]}" TTL session:1) s; HGETALL user:1 -> $("${restored_cli[@]}" HGETALL user:1 | paste -sd ' ')"

stage "6. summary"
human() { numfmt --to=iec-i --suffix=B --round=nearest --format='%.1f' "$1" 2>/dev/null || echo "$1 bytes"; }
thousands() { sed -E ':a; s/([0-9])([0-9]{3})($|,)/\1,\2\3/; ta' <<<"$1"; }
{
    printf '%-18s %s\n' "cluster" "$NAMESPACE/cache (memoryLimit $(k get rediscluster cache -o 'jsonpath={.spec.memoryLimit}')) at $source_address"
    printf '%-18s %s\n' "keys" "$(thousands "$keys") (strings, lists, hashes, sets, sorted sets; some with a TTL, some large)"
    printf '%-18s %s\n' "backup" "cache-backup-1: $(human "$backup_bytes") of RDB, $(thousands "$backup_keys") keys, method $backup_method, in $backup_time"
    why="${backup_reason#"$backup_method" }"
    why="${why#(}"
    printf '%-18s %s\n' "  why $backup_method" "${why%)}"
    printf '%-18s %s\n' "  in S3" "$backup_location (${backup_object##*/}, its .meta.json, manifest.json)"
    printf '%-18s %s\n' "restore" "cache-restore-1 -> new cluster cache-restored at $restored_address, in $restore_time"
    printf '%-18s %s\n' "verified" "$(thousands "$verified") of $(thousands "$keys") keys identical after the restore (type, value, PEXPIRETIME)"
    printf '%-18s %s\n' "elapsed" "$((SECONDS - started)) s in all, $build_seconds s of it building or checking the builds"
} | indent
echo
k get redisclusters,backups,restores | indent

if [[ "$KEEP" == 1 ]]; then
    stage "left running (KEEP=1)"
    cat <<EOF
    export KUBECONFIG=$KUBECONFIG      # or: source $BED_DIR/env (the S3 settings too)
    kubectl get redisclusters,backups,restores -n $NAMESPACE -o wide
    ${source_cli[*]}       # cache
    ${restored_cli[*]}       # cache-restored
    operator log: $OPERATOR_LOG (pid $operator_pid)
    to stop it all: kill $operator_pid; make testbed-down      (make demo again starts afresh)
EOF
fi
