# Shared helpers of the test bed scripts; source it, do not run it.
# Daemons run in sessions of their own (setsid), so a pid is also a process
# group id: stopping a daemon signals its whole group.

TESTBED_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TESTBED_REPO="$(cd "$TESTBED_SCRIPTS/../.." && pwd)"
TESTBED_RUN_DIR="${FERROCACHE_TESTBED_DIR:-/tmp/ferrocache-testbed}"
TESTBED_CACHE="${FERROCACHE_CACHE_DIR:-$HOME/.cache/ferrocache}"

# Ports on 127.0.0.1 (each can be overridden).
ETCD_PORT="${FERROCACHE_TESTBED_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${FERROCACHE_TESTBED_ETCD_PEER_PORT:-2380}"
API_PORT="${FERROCACHE_TESTBED_API_PORT:-6443}"
GARAGE_S3_PORT="${FERROCACHE_TESTBED_GARAGE_S3_PORT:-3900}"
GARAGE_RPC_PORT="${FERROCACHE_TESTBED_GARAGE_RPC_PORT:-3901}"
GARAGE_ADMIN_PORT="${FERROCACHE_TESTBED_GARAGE_ADMIN_PORT:-3903}"

tb_log() { echo "[testbed] $*" >&2; }
tb_die() { echo "[testbed] error: $*" >&2; exit 1; }

# tb_start NAME PIDDIR LOGDIR COMMAND...: start a daemon in its own session.
tb_start() {
    local name="$1" pid_dir="$2" log_dir="$3"
    shift 3
    mkdir -p "$pid_dir" "$log_dir"
    setsid "$@" >"$log_dir/$name.log" 2>&1 </dev/null &
    echo $! >"$pid_dir/$name.pid"
}

tb_pid_alive() {
    local pid="$1"
    [[ -n "$pid" ]] || return 1
    [[ -r "/proc/$pid/stat" ]] || return 1
    # A zombie is as good as gone.
    local state
    state="$(sed -E 's/^.*\) ([A-Z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || echo X)"
    [[ "$state" != Z && "$state" != X ]]
}

# tb_running PIDDIR NAME: whether the daemon recorded there is alive.
tb_running() {
    local file="$1/$2.pid"
    [[ -f "$file" ]] && tb_pid_alive "$(cat "$file")"
}

# tb_group_alive PGID: whether any live (non-zombie) process is in that group.
tb_group_alive() {
    ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^[ZX]/ { found = 1 } END { exit !found }'
}

# tb_stop PIDDIR NAME [TIMEOUT_SECONDS]: SIGTERM the daemon's group, SIGKILL
# after the timeout, and forget its pid file.
tb_stop() {
    local pid_dir="$1" name="$2" timeout="${3:-10}"
    local file="$pid_dir/$name.pid"
    [[ -f "$file" ]] || return 0
    local pid
    pid="$(cat "$file")"
    if [[ -n "$pid" ]] && tb_group_alive "$pid"; then
        tb_log "stopping $name (pid $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || true
        local deadline=$((SECONDS + timeout))
        while tb_group_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
        if tb_group_alive "$pid"; then
            tb_log "$name did not stop within ${timeout}s; killing it"
            kill -KILL -- "-$pid" 2>/dev/null || true
            while tb_group_alive "$pid"; do sleep 0.1; done
        fi
    fi
    rm -f "$file"
}

# tb_port_listening PORT [HOST]
tb_port_listening() {
    local port="$1" host="${2:-127.0.0.1}"
    ss -Hltn "sport = :$port" 2>/dev/null | awk '{print $4}' | grep -qE "(^|[^0-9])($host|\*|0\.0\.0\.0|\[::\]):$port$"
}

# tb_wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: retry until it succeeds.
tb_wait_for() {
    local what="$1" timeout="$2"
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            tb_log "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}
