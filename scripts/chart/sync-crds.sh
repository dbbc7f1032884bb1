#!/usr/bin/env bash
# Copy the generated CRDs, crds/*.yaml (written by `crdgen`), into the chart's
# charts/ferrocache/crds/, removing copies of CRDs that no longer exist.
#
#   scripts/chart/sync-crds.sh          copy
#   scripts/chart/sync-crds.sh --check  exit 1 if the chart's copies differ
#
# Helm installs the chart's crds/ on the first install only; upgrades apply
# them with `kubectl apply --server-side -f crds/`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SOURCE="$REPO/crds"
TARGET="$REPO/charts/ferrocache/crds"

shopt -s nullglob
sources=("$SOURCE"/*.yaml)
if ((${#sources[@]} == 0)); then
    echo "[sync-crds] no CRDs in $SOURCE: generate them first (crdgen)" >&2
    exit 1
fi

if [[ "${1:-}" == "--check" ]]; then
    if diff -r -u "$SOURCE" "$TARGET" >&2; then
        exit 0
    fi
    echo "[sync-crds] $TARGET differs from $SOURCE: run scripts/chart/sync-crds.sh" >&2
    exit 1
fi

mkdir -p "$TARGET"
rm -f "$TARGET"/*.yaml
cp "${sources[@]}" "$TARGET/"
echo "[sync-crds] copied ${#sources[@]} CRDs into $TARGET" >&2
