#!/usr/bin/env bash
# Stop everything up.sh started (by pid files, newest first), kill any pod
# process left behind, check that the ports are free, and remove the run
# directory ($FERROCACHE_TESTBED_DIR, default /tmp/ferrocache-testbed).
# FERROCACHE_TESTBED_KEEP=1 keeps the directory (logs) for a post-mortem.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN="$TESTBED_RUN_DIR"
PIDS="$RUN/pids"

# The stand-in stops its pods' processes itself on SIGTERM (10 s grace at most).
tb_stop "$PIDS" ferrocache-kubelet 30
# Whatever pod process group survived (the stand-in was killed, say).
shopt -s nullglob
for pid_file in "$RUN"/kubelet/pods/*/*.pid; do
    pid="$(cat "$pid_file")"
    if [[ -n "$pid" ]] && tb_group_alive "$pid"; then
        tb_log "killing leftover pod process group $pid ($pid_file)"
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
done
# Pod IPs the stand-in left on lo (it removes them itself when it stops cleanly),
# in this bed's pod CIDR only: another bed (the soak's) may be running beside it.
pod_cidr="${FERROCACHE_KUBELET_POD_CIDR:-198.18.0.0/16}"
while read -r address; do
    [[ -n "$address" ]] || continue
    tb_log "removing leftover pod address $address from lo"
    ip addr del "$address" dev lo 2>/dev/null || true
done < <(ip -4 -o addr show dev lo label lo:ferrocache 2>/dev/null | awk '{print $4}' |
    python3 -c 'import ipaddress, sys
network = ipaddress.ip_network(sys.argv[1])
for line in sys.stdin:
    if ipaddress.ip_interface(line.strip()).ip in network:
        print(line.strip())' "$pod_cidr")
tb_stop "$PIDS" kube-scheduler 10
tb_stop "$PIDS" kube-controller-manager 10
tb_stop "$PIDS" kube-apiserver 20
tb_stop "$PIDS" etcd 10
if [[ -d "$RUN/garage" ]]; then
    "$TESTBED_SCRIPTS/garage-stop.sh" "$RUN/garage"
fi

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
busy=()
for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$GARAGE_S3_PORT" "$GARAGE_RPC_PORT" "$GARAGE_ADMIN_PORT"; do
    tb_wait_for "port $port to be free" 10 port_free "$port" || busy+=("$port")
done
if ((${#busy[@]})); then
    ss -ltnp >&2
    tb_die "ports still in use after stopping the test bed: ${busy[*]}"
fi

if [[ "${FERROCACHE_TESTBED_KEEP:-0}" == 1 ]]; then
    tb_log "test bed stopped; kept $RUN"
else
    # Pod volumes may still be mounted in a dying namespace; they are private, so plain removal is safe.
    rm -rf "$RUN"
    tb_log "test bed stopped; removed $RUN"
fi
