#!/usr/bin/env bash
# Start the whole local test bed and print the exports a shell needs:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler (built from
#   Debian's source by build-kube.sh), the kubelet stand-in (ferrocache-kubelet)
#   and a single-node Garage with a key and a bucket.
#
#   eval "$(scripts/testbed/up.sh)"      # then kubectl get nodes
#   scripts/testbed/down.sh              # stops everything
#
# State lives in $FERROCACHE_TESTBED_DIR (default /tmp/ferrocache-testbed):
#   kubeconfig, env (the exports), pki/, logs/, pids/, etcd/, garage/,
#   kubelet/pods/<namespace>_<pod>/<container>.log|.pid
# Idempotent: when the bed of that directory is up, it only prints the exports.
#
# Settings (environment):
#   FERROCACHE_KUBELET_BIN          use this stand-in binary instead of building it
#   FERROCACHE_KUBELET_IMAGE_DIRS   image mapping (default ferrocache=<target>/debug#ferrocache-operator)
#   FERROCACHE_TESTBED_*_PORT       ports, see lib.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN="$TESTBED_RUN_DIR"
PIDS="$RUN/pids"
LOGS="$RUN/logs"
PKI="$RUN/pki"
NODE_NAME="${FERROCACHE_KUBELET_NODE_NAME:-ferrocache-local}"
DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler ferrocache-kubelet)

all_running() {
    local daemon
    for daemon in "${DAEMONS[@]}"; do tb_running "$PIDS" "$daemon" || return 1; done
    tb_running "$RUN/garage" garage && [[ -f "$RUN/env" ]]
}

if all_running; then
    tb_log "test bed already up in $RUN"
    cat "$RUN/env"
    exit 0
fi
if [[ -d "$PIDS" || -d "$RUN/garage" ]]; then
    tb_log "cleaning up a partial test bed in $RUN"
    "$TESTBED_SCRIPTS/down.sh" >&2
fi

started=$SECONDS
KUBE_BIN="$("$TESTBED_SCRIPTS/build-kube.sh")"
"$TESTBED_SCRIPTS/install-garage.sh" >/dev/null

TARGET_DIR="${CARGO_TARGET_DIR:-$TESTBED_REPO/target}"
if [[ -n "${FERROCACHE_KUBELET_BIN:-}" ]]; then
    KUBELET_BIN="$FERROCACHE_KUBELET_BIN"
else
    tb_log "building ferrocache-kubelet"
    (cd "$TESTBED_REPO" && cargo build -q -p ferrocache-testbed --bin ferrocache-kubelet >&2)
    KUBELET_BIN="$TARGET_DIR/debug/ferrocache-kubelet"
fi
[[ -x "$KUBELET_BIN" ]] || tb_die "kubelet stand-in binary $KUBELET_BIN not found"
IMAGE_DIRS="${FERROCACHE_KUBELET_IMAGE_DIRS:-ferrocache=$TARGET_DIR/debug#ferrocache-operator}"

for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT"; do
    if tb_port_listening "$port"; then
        tb_die "port $port is already in use; stop whatever holds it (ss -ltnp 'sport = :$port')"
    fi
done
setup_started=$SECONDS
mkdir -p "$RUN" "$PIDS" "$LOGS" "$PKI"

# --- certificates, service-account keys, token -------------------------------
tb_log "writing certificates and credentials to $PKI"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ferrocache-testbed-ca" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
cat >"$PKI/apiserver.ext" <<EXT
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:10.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
EXT
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null
openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt" 2>/dev/null
openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
TOKEN="$(openssl rand -hex 32)"
echo "$TOKEN,admin,admin,system:masters" >"$PKI/tokens.csv"
chmod 600 "$PKI"/*.key "$PKI/tokens.csv"

KUBECONFIG_FILE="$RUN/kubeconfig"
cat >"$KUBECONFIG_FILE" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: ferrocache-testbed
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: ferrocache-testbed
  context:
    cluster: ferrocache-testbed
    user: admin
    namespace: default
current-context: ferrocache-testbed
KCFG
chmod 600 "$KUBECONFIG_FILE"
kubectl_() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

fail() {
    tb_log "$1; last log lines of $2:"
    tail -n 30 "$LOGS/$2.log" >&2 || true
    tb_log "stopping the partial test bed; its logs stay in $LOGS"
    FERROCACHE_TESTBED_KEEP=1 "$TESTBED_SCRIPTS/down.sh" >&2 || true
    exit 1
}

# --- etcd ---------------------------------------------------------------------
tb_log "starting etcd on 127.0.0.1:$ETCD_PORT"
tb_start etcd "$PIDS" "$LOGS" etcd \
    --name testbed --data-dir "$RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "testbed=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648
tb_wait_for "etcd" 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health" || fail "etcd did not become healthy" etcd

# --- kube-apiserver -----------------------------------------------------------
tb_log "starting kube-apiserver on https://127.0.0.1:$API_PORT"
tb_start kube-apiserver "$PIDS" "$LOGS" "$KUBE_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --token-auth-file "$PKI/tokens.csv" \
    --authorization-mode RBAC \
    --service-cluster-ip-range 10.0.0.0/24 \
    --endpoint-reconciler-type none \
    --allow-privileged=true --profiling=false
tb_wait_for "kube-apiserver" 60 kubectl_ get --raw /readyz || fail "kube-apiserver did not become ready" kube-apiserver

# --- controller-manager and scheduler ------------------------------------------
tb_log "starting kube-controller-manager and kube-scheduler"
tb_start kube-controller-manager "$PIDS" "$LOGS" "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_FILE" \
    --controllers '*,-nodeipam,-nodelifecycle' \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --leader-elect=false --port 0 --secure-port 0 --profiling=false
tb_start kube-scheduler "$PIDS" "$LOGS" "$KUBE_BIN/kube-scheduler" \
    --kubeconfig "$KUBECONFIG_FILE" \
    --leader-elect=false --port 0 --secure-port 0 --profiling=false

has_default_token() {
    [[ -n "$(kubectl_ -n default get serviceaccount default -o 'jsonpath={.secrets[0].name}' 2>/dev/null)" ]]
}
tb_wait_for "the default service account token" 60 has_default_token ||
    fail "the default service account has no token" kube-controller-manager

# --- kubelet stand-in ---------------------------------------------------------
tb_log "starting ferrocache-kubelet (node $NODE_NAME, images $IMAGE_DIRS)"
mkdir -p "$RUN/kubelet"
tb_start ferrocache-kubelet "$PIDS" "$LOGS" env \
    KUBECONFIG="$KUBECONFIG_FILE" RUST_LOG="${RUST_LOG:-info}" \
    "$KUBELET_BIN" --node-name "$NODE_NAME" --run-dir "$RUN/kubelet" --image-dirs "$IMAGE_DIRS"
node_ready() {
    [[ "$(kubectl_ get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
tb_wait_for "node $NODE_NAME to be Ready" 60 node_ready || fail "the node did not become Ready" ferrocache-kubelet

# --- Garage ---------------------------------------------------------------------
GARAGE_ENV="$("$TESTBED_SCRIPTS/garage-start.sh" "$RUN/garage")" || fail "garage did not start" ferrocache-kubelet

cat >"$RUN/env.tmp" <<ENV
export KUBECONFIG=$KUBECONFIG_FILE
export FERROCACHE_TESTBED_DIR=$RUN
$GARAGE_ENV
ENV
mv "$RUN/env.tmp" "$RUN/env"
tb_log "test bed up in $((SECONDS - started)) s (control plane, stand-in and garage in $((SECONDS - setup_started)) s); stop it with scripts/testbed/down.sh"
cat "$RUN/env"
