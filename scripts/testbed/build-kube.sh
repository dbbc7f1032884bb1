#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager and kube-scheduler from Debian's
# `kubernetes` source package and cache them outside the clone, keyed by version:
#   ~/.cache/ferrocache/kubernetes-<version>/bin/
# Idempotent: exits at once when the cached binaries exist.
# Prints the bin directory as the last line of output.
set -euo pipefail

CACHE_ROOT="${FERROCACHE_CACHE_DIR:-$HOME/.cache/ferrocache}"
# Debian's name for the 1.20.2 source (bookworm).
KUBE_VERSION="${FERROCACHE_KUBE_VERSION:-1.20.5+really1.20.2}"
BIN_DIR="$CACHE_ROOT/kubernetes-$KUBE_VERSION/bin"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)

log() { echo "[build-kube] $*" >&2; }

have_all() {
    local b
    for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
}

ensure_host_packages() {
    local missing=()
    command -v etcd >/dev/null || missing+=(etcd-server)
    [[ -x /usr/lib/go-1.19/bin/go ]] || missing+=(golang-1.19-go)
    command -v rsync >/dev/null || missing+=(rsync)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v curl >/dev/null || missing+=(curl)
    [[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ]] || missing+=(golang-github-modern-go-reflect2-dev)
    if ((${#missing[@]})); then
        log "installing host packages: ${missing[*]}"
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
    fi
}

APT_UPDATED=0
apt_update_once() {
    if ((APT_UPDATED == 0)); then
        log "apt-get update"
        apt-get update >&2
        APT_UPDATED=1
    fi
}

enable_deb_src() {
    local sources=/etc/apt/sources.list.d/debian.sources
    if [[ -f "$sources" ]] && grep -qE '^Types: deb$' "$sources"; then
        log "enabling deb-src in $sources"
        sed -i -E 's/^Types: deb$/Types: deb deb-src/' "$sources"
        APT_UPDATED=0
    fi
}

# Runtime needs (etcd, openssl, curl) are checked even when the build is cached.
if have_all; then
    ensure_host_packages
    log "cached binaries present in $BIN_DIR"
    echo "$BIN_DIR"
    exit 0
fi

enable_deb_src
ensure_host_packages

WORK="$CACHE_ROOT/build/kubernetes-$KUBE_VERSION"
SRC="$WORK/kubernetes-$KUBE_VERSION"
mkdir -p "$WORK"
if [[ ! -d "$SRC" ]]; then
    log "fetching source package into $WORK"
    apt_update_once
    (cd "$WORK" && apt-get source kubernetes >&2)
fi
if [[ ! -d "$SRC" ]]; then
    SRC="$(find "$WORK" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -n1)"
    [[ -n "$SRC" ]] || { log "no unpacked kubernetes source under $WORK"; exit 1; }
fi

# Vendored reflect2 1.0.1 segfaults under Go >= 1.18: replace it by Debian's 1.0.2.
REFLECT2_VENDOR="$SRC/vendor/github.com/modern-go/reflect2"
REFLECT2_DEB=/usr/share/gocode/src/github.com/modern-go/reflect2
if [[ ! -f "$REFLECT2_VENDOR/.ferrocache-reflect2-1.0.2" ]]; then
    log "replacing vendored reflect2 with $REFLECT2_DEB"
    rm -rf "$REFLECT2_VENDOR"
    mkdir -p "$REFLECT2_VENDOR"
    find "$REFLECT2_DEB" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
        -exec cp {} "$REFLECT2_VENDOR/" \;
    touch "$REFLECT2_VENDOR/.ferrocache-reflect2-1.0.2"
fi

mkdir -p "$SRC/.go/src/k8s.io"
[[ -e "$SRC/.go/src/k8s.io/kubernetes" ]] || ln -s ../../.. "$SRC/.go/src/k8s.io/kubernetes"

log "building ${BINARIES[*]} (about 5 minutes on 2 cores from cold)"
start=$(date +%s)
(
    cd "$SRC/.go/src/k8s.io/kubernetes"
    export GOPATH="$SRC/.go" PATH="/usr/lib/go-1.19/bin:$PATH" CGO_ENABLED=0 GO111MODULE=off
    export GOFLAGS="${GOFLAGS:-}" GOCACHE="$CACHE_ROOT/build/go-cache"
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" >&2
)
log "build finished in $(( $(date +%s) - start )) s"

mkdir -p "$BIN_DIR"
for b in "${BINARIES[@]}"; do
    install -m 0755 "$SRC/_output/local/bin/linux/amd64/$b" "$BIN_DIR/$b.tmp"
    mv "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
done
log "installed to $BIN_DIR"
echo "$BIN_DIR"
