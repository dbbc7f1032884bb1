#!/usr/bin/env bash
# Installs the system packages the tests and benchmarks need (Redis 7 as the
# reference peer, kubectl for the end-to-end tests). Idempotent: does nothing when everything is present.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
command -v tclsh >/dev/null 2>&1 || need+=(tcl)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)

if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing ${need[*]}"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
# A system redis-server started by the package would hold port 6379; the
# tests start their own instances on free ports, so stop it if it runs.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server || true
fi
echo "==> redis $(redis-server --version | awk '{print $3}') ready"
