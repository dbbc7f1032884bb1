#!/usr/bin/env python3
"""ferrocache benchmark harness.

Starts a real Redis 7 and ferrocache-node in the same session on the same
machine, runs the same workloads against both, and prints one table of
ratios (node / Redis). The client shares the cores with the servers, so only
the ratios mean anything; absolute figures are printed for context.

Usage: python3 bench/run.py [--quick] [--markdown docs/benchmarks.md] [--only throughput,memory]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# FERROCACHE_BENCH_NODE names another build, to compare two builds of the node against the same Redis.
NODE_BINARY = Path(os.environ.get("FERROCACHE_BENCH_NODE", ROOT / "target" / "release" / "ferrocache-node"))
THROUGHPUT_TESTS = ["set", "get", "incr", "lpush", "lpop", "sadd", "hset", "zadd"]
# The least work a server can do per request. redis-benchmark's rate at it against the node, run
# right after each pair, is about the most one client process drives on this machine at that
# moment: a test whose ratio that ceiling caps is set by the client, not the server.
CEILING_TEST = "ping_mbulk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process on a free loopback port, stopped on exit."""

    def __init__(self, kind: str, extra: list[str] | None = None):
        self.kind = kind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"bench-{kind}-")
        common = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
        if kind == "redis":
            command = ["redis-server", *common, "--save", "", "--appendonly", "no"]
        else:
            command = [str(NODE_BINARY), *common, "--save", ""]
        command += extra or []
        env = dict(os.environ, RUST_LOG="warn")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.cli("PING", check=False) == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError(f"{kind} did not start on port {self.port}")

    def cli(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"redis-cli {args} failed: {result.stderr}")
        return result.stdout.strip()

    def info(self, section: str) -> dict[str, str]:
        fields = {}
        for line in self.cli("INFO", section).splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        return fields

    def cpu_seconds(self) -> float:
        """User and system time of every thread of the server so far (clock-tick precision)."""
        ticks = 0
        for task in os.listdir(f"/proc/{self.process.pid}/task"):
            try:
                with open(f"/proc/{self.process.pid}/task/{task}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue  # a thread that ended meanwhile
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Row:
    section: str
    metric: str
    redis: float
    node: float
    unit: str
    # Target ratio and whether higher ratios are better.
    target: float | None = None
    higher_is_better: bool = True
    notes: str = ""
    # The ratio when it is not node / redis of the two columns: the median of ratios of paired
    # runs, taken moments apart, so that a slow spell of the machine cancels out.
    paired_ratio: float | None = None
    ratio: float = field(init=False)

    def __post_init__(self) -> None:
        if self.paired_ratio is not None:
            self.ratio = self.paired_ratio
        else:
            self.ratio = self.node / self.redis if self.redis else float("nan")

    def met(self) -> str:
        if self.target is None:
            return ""
        if self.ratio != self.ratio:
            return "NO (failed)"
        ok = self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target
        return "yes" if ok else "NO"

    def target_text(self) -> str:
        if self.target is None:
            return ""
        return f"{'>=' if self.higher_is_better else '<='} {self.target:.2f}x"


def redis_benchmark(server: Server, test: str, requests: int, pipeline: int) -> dict[str, float]:
    """One redis-benchmark run: its throughput and latencies, and the server's CPU time per request
    (which, where one client process cannot drive either server flat out, says which server does
    the same work with less)."""
    command = [
        "redis-benchmark", "-p", str(server.port), "-c", "50", "-n", str(requests), "-t", test,
        "-r", "100000", "-P", str(pipeline), "--csv",
    ]
    cpu_before = server.cpu_seconds()
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = server.cpu_seconds() - cpu_before
    client_seconds = (client_after.ru_utime - client_before.ru_utime) + (client_after.ru_stime - client_before.ru_stime)
    if result.returncode != 0:
        print(f"  redis-benchmark {test} failed on port {server.port}: {result.stderr.strip()[:200]}",
              file=sys.stderr)
        return {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "cpu_us": float("nan"),
                "client_busy": float("nan")}
    rows = list(csv.reader(io.StringIO(result.stdout)))
    header, values = rows[0], rows[1]
    parsed = dict(zip(header, values))
    return {
        "rps": float(parsed["rps"]),
        "p50": float(parsed["p50_latency_ms"]),
        "p99": float(parsed["p99_latency_ms"]),
        "cpu_us": cpu_seconds * 1e6 / requests,
        "client_busy": client_seconds / elapsed if elapsed > 0 else float("nan"),
    }


def paired(runs: dict[str, list[dict[str, float]]], key: str) -> tuple[float, float, float]:
    """Median, lowest and highest of node / Redis over runs taken in pairs, back to back.

    The host's speed drifts by 10-40% over minutes (CPU time that `steal` does not show); two
    runs seconds apart meet the same machine, so their ratio keeps what the servers do and drops
    what the host did."""
    ratios = sorted(node[key] / redis[key] for redis, node in zip(runs["redis"], runs["node"])
                    if redis[key] == redis[key] and node[key] == node[key] and redis[key])
    if not ratios:
        return float("nan"), float("nan"), float("nan")
    return median(ratios), ratios[0], ratios[-1]


def medians(runs: dict[str, list[dict[str, float]]], key: str) -> dict[str, float]:
    """Each server's median of one figure over its runs."""
    return {name: median([run[key] for run in server_runs]) for name, server_runs in runs.items()}


def client_busy_text(runs: dict[str, list[dict[str, float]]]) -> str:
    """How much of a core redis-benchmark used against each server. Near 100% the client, not
    the server, sets the pace: a faster server cannot show more than the client drives."""
    busy = medians(runs, "client_busy")
    return f"Redis {busy['redis']:.0%}, node {busy['node']:.0%}"


def bench_throughput(quick: bool, repeat: int) -> list[Row]:
    """redis-benchmark against both servers, unpipelined and with `-P 16`, in back-to-back pairs,
    each followed by the client's ceiling (CEILING_TEST against the node)."""
    rows: list[Row] = []
    requests_plain = 50_000 if quick else 200_000
    requests_pipelined = 200_000 if quick else 1_000_000
    redis = Server("redis")
    node = Server("node")
    try:
        for test in THROUGHPUT_TESTS:
            for pipeline in (1, 16):
                requests = requests_plain if pipeline == 1 else requests_pipelined
                runs: dict[str, list[dict[str, float]]] = {"redis": [], "node": []}
                ceilings: list[dict[str, float]] = []
                # Each attempt runs both servers back to back, alternating which goes first so
                # neither always meets a warmer machine.
                for attempt in range(repeat):
                    order = [("redis", redis), ("node", node)]
                    if (THROUGHPUT_TESTS.index(test) + attempt) % 2:
                        order.reverse()
                    for name, server in order:
                        runs[name].append(redis_benchmark(server, test, requests, pipeline))
                    ceilings.append(redis_benchmark(node, CEILING_TEST, requests, pipeline))
                label = test.upper() + ("" if pipeline == 1 else " -P 16")
                target = 1.0 if pipeline == 1 else 1.3
                cpu = medians(runs, "cpu_us")
                rps = medians(runs, "rps")
                ratio, low, high = paired(runs, "rps")
                ceiling, _, _ = paired({"redis": runs["redis"], "node": ceilings}, "rps")
                rows.append(Row("throughput", f"{label} ops/s", rps["redis"], rps["node"], "ops/s", target,
                                paired_ratio=ratio,
                                notes=f"pairs {low:.2f}-{high:.2f}x; server CPU per request: "
                                      f"Redis {cpu['redis']:.2f} us, node {cpu['node']:.2f} us "
                                      f"({cpu['node'] / cpu['redis']:.2f}x); client busy: "
                                      f"{client_busy_text(runs)}; client ceiling {ceiling:.2f}x"))
                if pipeline == 1:
                    for key, limit in (("p50", None), ("p99", 1.1)):
                        value = medians(runs, key)
                        ratio, low, high = paired(runs, key)
                        rows.append(Row("latency", f"{test.upper()} {key}", value["redis"], value["node"], "ms",
                                        limit, higher_is_better=False, paired_ratio=ratio,
                                        notes=f"pairs {low:.2f}-{high:.2f}x"))
                print(f"  {label:<14} redis {series(runs['redis'], 'rps', ',.0f')}/s  "
                      f"node {series(runs['node'], 'rps', ',.0f')}/s", file=sys.stderr)
    finally:
        redis.stop()
        node.stop()
    return rows


def write_protocol(path: Path, commands) -> None:
    """Writes commands as RESP into a file for `redis-cli --pipe`."""
    with open(path, "wb") as out:
        for args in commands:
            parts = [b"*%d\r\n" % len(args)]
            for arg in args:
                data = arg if isinstance(arg, bytes) else str(arg).encode()
                parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
            out.write(b"".join(parts))


def memory_workloads(quick: bool):
    scale = 10 if quick else 1
    strings = 1_000_000 // scale
    hashes = 100_000 // scale
    zsets = 100_000 // scale
    value = b"x" * 100
    yield (f"{strings:,} strings x 100 B", strings,
           (["SET", f"key:{index:012d}", value] for index in range(strings)))
    yield (f"{hashes:,} hashes x 20 fields", hashes,
           (["HSET", f"hash:{index:08d}", *sum(([f"field:{f}", f"value-{index % 1000}-{f}"] for f in range(20)), [])]
            for index in range(hashes)))
    yield (f"{zsets:,} zsets x 50 members", zsets,
           (["ZADD", f"zset:{index:08d}", *sum(([str(m * 1.5), f"member:{m}"] for m in range(50)), [])]
            for index in range(zsets)))


def bench_memory(quick: bool) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-proto-") as scratch:
        for label, keys, commands in memory_workloads(quick):
            protocol = Path(scratch) / "load.resp"
            write_protocol(protocol, commands)
            measured = {}
            for kind in ("redis", "node"):
                server = Server(kind)
                try:
                    before = server.rss_bytes()
                    with open(protocol, "rb") as source:
                        subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], stdin=source,
                                       stdout=subprocess.DEVNULL, check=True)
                    count = int(server.cli("DBSIZE"))
                    if count != keys:
                        raise RuntimeError(f"{kind}: expected {keys} keys, found {count}")
                    time.sleep(0.5)
                    measured[kind] = (server.rss_bytes() - before) / keys
                finally:
                    server.stop()
            rows.append(Row("memory", f"{label}: RSS bytes/key", measured["redis"], measured["node"], "B/key",
                            1.1, higher_is_better=False))
            print(f"  {label:<28} redis {measured['redis']:8.1f} B/key  node {measured['node']:8.1f} B/key",
                  file=sys.stderr)
    return rows


def wait_until(predicate, timeout: float, interval: float = 0.005) -> float:
    """Polls until predicate() is true; returns the seconds waited."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise RuntimeError("timed out waiting")
        time.sleep(interval)
    return time.perf_counter() - started


def timed_bgsave(server: Server) -> tuple[float, int, float]:
    """Runs BGSAVE and returns (seconds, peak extra memory bytes, fork pause ms)."""
    started = time.perf_counter()
    reply = server.cli("BGSAVE")
    if "started" not in reply.lower():
        raise RuntimeError(f"{server.kind}: BGSAVE answered {reply}")
    peak_cow = 0
    while True:
        persistence = server.info("persistence")
        if server.kind == "redis":
            peak_cow = max(peak_cow, int(persistence.get("current_cow_peak", persistence.get("current_cow_size", 0))))
        if persistence.get("rdb_bgsave_in_progress") == "0":
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    persistence = server.info("persistence")
    if persistence.get("rdb_last_bgsave_status") != "ok":
        raise RuntimeError(f"{server.kind}: BGSAVE failed: {persistence}")
    peak = max(peak_cow, save_extra_memory(server.kind, persistence))
    if server.kind == "redis":
        fork_ms = int(server.info("stats").get("latest_fork_usec", 0)) / 1000
    else:
        fork_ms = int(persistence.get("snapshot_last_fork_usec", 0)) / 1000
    return elapsed, peak, fork_ms


def save_extra_memory(kind: str, persistence: dict[str, str]) -> int:
    """The extra memory of the save that just ended, from INFO persistence: the node's sampled peak,
    Redis's copy-on-write at the child's end (which, with writes going on, is where it peaks)."""
    if kind == "redis":
        return int(persistence.get("rdb_last_cow_size", 0))
    return int(persistence.get("snapshot_last_peak_extra_memory", 0))


def load_keys(server: Server, protocol: Path, expected: int) -> None:
    with open(protocol, "rb") as source:
        subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], stdin=source,
                       stdout=subprocess.DEVNULL, check=True)
    count = int(server.cli("DBSIZE"))
    if count != expected:
        raise RuntimeError(f"{server.kind}: expected {expected} keys, found {count}")


def write_load_during(server: Server, requests: int, trigger) -> dict[str, float]:
    """Runs a SET load of `requests` writes; calls trigger() one second in."""
    command = ["redis-benchmark", "-p", str(server.port), "-c", "50", "-n", str(requests), "-t", "set",
               "-r", "3000000", "-d", "100", "--csv"]
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1.0)
    if trigger is not None:
        trigger()
    try:
        output, _ = load.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        load.kill()
        output, _ = load.communicate()
    rows = list(csv.reader(io.StringIO(output)))
    if len(rows) < 2:
        return {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    parsed = dict(zip(rows[0], rows[1]))
    return {"rps": float(parsed["rps"]), "p50": float(parsed["p50_latency_ms"]),
            "p99": float(parsed["p99_latency_ms"]), "max": float(parsed["max_latency_ms"])}


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


# The node forking with transparent huge pages, which only saves idle: its pause shows what
# `disable-thp no` buys.
HUGE_PAGES = "node-fork-thp"


def turns(labels: list[str], attempt: int) -> list[str]:
    """The order the servers take their turn in, rotated every attempt so none always goes first."""
    shift = attempt % len(labels)
    return labels[shift:] + labels[:shift]


def series(runs: list[dict[str, float]], key: str, spec: str) -> str:
    """One figure of every run, for the progress lines."""
    return " ".join(format(run[key], spec) for run in runs)


def bench_snapshots(quick: bool, repeat: int) -> list[Row]:
    """Redis and the node by each method hold the same keys side by side and take turns, run by
    run (a slow spell of the shared machine then falls on all three rather than on one): each saves
    idle `repeat` times, then runs the write load `repeat` times without and with a save. Every
    figure is the median of its runs (a single fork pause or longest stall moves by 2x between
    runs on this machine), and the worst stall is noted."""
    rows: list[Row] = []
    keys = 300_000 if quick else 3_000_000
    requests = 150_000 if quick else 600_000
    value = b"x" * 100
    with tempfile.TemporaryDirectory(prefix="bench-snap-") as scratch:
        protocol = Path(scratch) / "load.resp"
        write_protocol(protocol, (["SET", f"key:{index:012d}", value] for index in range(keys)))
        redis_rdb = Path(scratch) / "redis.rdb"
        servers: dict[str, Server] = {}
        try:
            for label, kind, extra in (("redis", "redis", []), ("node-fork", "node", ["--snapshot-method", "fork"]),
                                       ("node-forkless", "node", ["--snapshot-method", "forkless"]),
                                       (HUGE_PAGES, "node", ["--snapshot-method", "fork", "--disable-thp", "no"])):
                servers[label] = Server(kind, extra)
                load_keys(servers[label], protocol, keys)
            data_bytes = {label: int(server.info("memory")["used_memory"]) for label, server in servers.items()}
            saves: dict[str, list] = {label: [] for label in servers}
            idles: dict[str, list] = {label: [] for label in servers}
            busies: dict[str, list] = {label: [] for label in servers}
            for attempt in range(repeat):
                for label in turns(list(servers), attempt):
                    saves[label].append(timed_bgsave(servers[label]))
            shutil.copy(Path(servers["redis"].dir) / "dump.rdb", redis_rdb)
            for attempt in range(repeat):
                for label in turns([label for label in servers if label != HUGE_PAGES], attempt):
                    server = servers[label]
                    idles[label].append(write_load_during(server, requests, None))
                    busies[label].append(write_load_during(server, requests, lambda: server.cli("BGSAVE")))
                    wait_until(lambda: server.info("persistence").get("rdb_bgsave_in_progress") == "0", 300)
                    busies[label][-1]["peak"] = save_extra_memory(server.kind, server.info("persistence"))
        finally:
            for server in servers.values():
                server.stop()
        results: dict[str, dict[str, float]] = {}
        huge = saves.pop(HUGE_PAGES)
        results[HUGE_PAGES] = {"fork_ms": median([save[2] for save in huge]),
                               "peak": median([save[1] for save in huge])}
        print(f"  {HUGE_PAGES:<14} saves (duration/fork pause) "
              + " ".join(f"{save[0]:.2f}s/{save[2]:.1f}ms" for save in huge)
              + f"  peak extra {results[HUGE_PAGES]['peak'] / 2**20:.1f} MiB", file=sys.stderr)
        for label in saves:
            runs, idle, busy = saves[label], idles[label], busies[label]
            results[label] = {
                "seconds": median([save[0] for save in runs]),
                "peak": median([save[1] for save in runs]),
                "fork_ms": median([save[2] for save in runs]),
                "data": data_bytes[label],
                "idle_rps": median([run["rps"] for run in idle]),
                "busy_rps": median([run["rps"] for run in busy]),
                "busy_p50": median([run["p50"] for run in busy]),
                "busy_p99": median([run["p99"] for run in busy]),
                "busy_max": median([run["max"] for run in busy]),
                "busy_worst": max(run["max"] for run in busy),
                "busy_peak": median([run["peak"] for run in busy]),
                "idle_p99": median([run["p99"] for run in idle]),
                "idle_max": median([run["max"] for run in idle]),
                "idle_worst": max(run["max"] for run in idle),
            }
            saves_text = " ".join(f"{save[0]:.2f}s/{save[2]:.1f}ms" for save in runs)
            print(f"  {label:<14} saves (duration/fork pause) {saves_text}  "
                  f"peak extra {results[label]['peak'] / 2**20:.1f} MiB  load idle {series(idle, 'rps', ',.0f')}/s  "
                  f"during save {series(busy, 'rps', ',.0f')}/s p99 {series(busy, 'p99', '.2f')} ms "
                  f"max {series(busy, 'max', '.1f')} ms extra {series(busy, 'peak', ',.0f')} B", file=sys.stderr)
        # Loading the same RDB (written by Redis) at start.
        load_seconds = {}
        for kind in ("redis", "node"):
            directory = tempfile.mkdtemp(prefix=f"bench-load-{kind}-")
            shutil.copy(redis_rdb, Path(directory) / "dump.rdb")
            started = time.perf_counter()
            server = Server(kind, ["--dir", directory, "--dbfilename", "dump.rdb"])
            try:
                wait_until(lambda: server.info("persistence").get("loading") == "0", 600, 0.002)
                load_seconds[kind] = time.perf_counter() - started
                loaded = int(server.cli("DBSIZE"))
                if loaded != keys:
                    raise RuntimeError(f"{kind} loaded {loaded} keys of {keys}")
            finally:
                server.stop()
                shutil.rmtree(directory, ignore_errors=True)
        print(f"  load at start: redis {load_seconds['redis']:.2f}s node {load_seconds['node']:.2f}s", file=sys.stderr)
    redis = results["redis"]
    fork = results["node-fork"]
    forkless = results["node-forkless"]
    label = f"{keys:,} x 100 B"
    rows.append(Row("snapshot", f"{label}: idle save seconds (fork)", redis["seconds"], fork["seconds"], "s", 1.0,
                    higher_is_better=False))
    rows.append(Row("snapshot", f"{label}: idle save seconds (forkless)", redis["seconds"], forkless["seconds"], "s",
                    1.0, higher_is_better=False))
    rows.append(Row("snapshot", "fork pause ms", redis["fork_ms"], fork["fork_ms"], "ms", 1.0,
                    higher_is_better=False))
    rows.append(Row("snapshot", "peak extra memory, fork (MiB)", redis["peak"] / 2**20, fork["peak"] / 2**20, "MiB",
                    1.0, higher_is_better=False))
    huge = results[HUGE_PAGES]
    rows.append(Row("snapshot", "fork pause ms, with huge pages (disable-thp no)", redis["fork_ms"], huge["fork_ms"],
                    "ms", None, higher_is_better=False,
                    notes=f"idle copy-on-write peak {huge['peak'] / 2**20:.2f} MiB; off by default (docs/benchmarks.md)"))
    rows.append(Row("snapshot", "peak extra memory, forkless (% of data)", 100 * redis["peak"] / redis["data"],
                    100 * forkless["peak"] / forkless["data"], "%", None, higher_is_better=False,
                    notes="target: forkless <= 5% of the data set"))
    rows.append(Row("snapshot", "write load during save: ops/s (forkless vs Redis BGSAVE)", redis["busy_rps"],
                    forkless["busy_rps"], "ops/s", 1.3))
    rows.append(Row("snapshot", "write load during save: p99 ms (forkless vs Redis BGSAVE)", redis["busy_p99"],
                    forkless["busy_p99"], "ms", 0.5, higher_is_better=False))
    rows.append(Row("snapshot", "write load during save: longest stall ms (forkless vs Redis)", redis["busy_max"],
                    forkless["busy_max"], "ms", None, higher_is_better=False,
                    notes=f"target: under 5 ms; worst run: Redis {redis['busy_worst']:.1f}, "
                          f"node {forkless['busy_worst']:.1f}"))
    rows.append(Row("snapshot", "write load during save: ops/s (fork vs Redis BGSAVE)", redis["busy_rps"],
                    fork["busy_rps"], "ops/s", None))
    rows.append(Row("snapshot", "write load during save: extra memory MiB (fork vs Redis BGSAVE)",
                    redis["busy_peak"] / 2**20, fork["busy_peak"] / 2**20, "MiB", None, higher_is_better=False,
                    notes=f"forkless: {forkless['busy_peak'] / 2**20:.1f} MiB"))
    rows.append(Row("snapshot", "write load idle: ops/s", redis["idle_rps"], forkless["idle_rps"], "ops/s", None))
    rows.append(Row("snapshot", "write load idle: p99 ms", redis["idle_p99"], forkless["idle_p99"], "ms", None,
                    higher_is_better=False))
    rows.append(Row("snapshot", "write load idle: longest stall ms", redis["idle_max"], forkless["idle_max"], "ms",
                    None, higher_is_better=False, notes="the same load with no snapshot: the floor for the stall row; worst run: "
                          f"Redis {redis['idle_worst']:.1f}, node {forkless['idle_worst']:.1f}"))
    rows.append(Row("snapshot", f"{label}: load RDB at start, seconds", load_seconds["redis"], load_seconds["node"],
                    "s", 0.5, higher_is_better=False))
    return rows


def start_garage(scratch: str) -> dict[str, str]:
    """Starts a single-node Garage with the project's script; returns its exports."""
    directory = Path(scratch) / "garage"
    output = subprocess.run([str(ROOT / "scripts/testbed/garage-start.sh"), str(directory)], capture_output=True,
                            text=True, check=True).stdout
    exports = {}
    for line in output.splitlines():
        if line.startswith("export ") and "=" in line:
            name, value = line[len("export "):].split("=", 1)
            exports[name] = value.strip("'\"")
    return exports


def bench_s3(quick: bool) -> list[Row]:
    rows: list[Row] = []
    keys = 300_000 if quick else 3_000_000
    value = b"x" * 100
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as scratch:
        exports = start_garage(scratch)
        try:
            protocol = Path(scratch) / "load.resp"
            write_protocol(protocol, (["SET", f"key:{index:012d}", value] for index in range(keys)))
            env_backup = dict(os.environ)
            os.environ.update({name: exports[name] for name in
                               ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL")})
            bucket = exports["FERROCACHE_TEST_BUCKET"]
            try:
                node = Server("node", ["--snapshot-method", "forkless"])
                try:
                    load_keys(node, protocol, keys)
                    local_seconds, _, _ = timed_bgsave(node)
                    started = time.perf_counter()
                    node.cli("BACKUP", "START", "bench", f"s3://{bucket}/bench.rdb")
                    wait_until(lambda: "succeeded" in node.cli("BACKUP", "STATUS", "bench")
                               or "failed" in node.cli("BACKUP", "STATUS", "bench"), 600, 0.01)
                    s3_seconds = time.perf_counter() - started
                    if "failed" in node.cli("BACKUP", "STATUS", "bench"):
                        raise RuntimeError(node.cli("BACKUP", "STATUS", "bench"))
                    shutil.copy(Path(node.dir) / "dump.rdb", Path(scratch) / "node.rdb")
                finally:
                    node.stop()
                started = time.perf_counter()
                preloaded = Server("node", ["--preload", f"s3://{bucket}/bench.rdb"])
                try:
                    wait_until(lambda: preloaded.info("persistence").get("loading") == "0", 600, 0.002)
                    preload_seconds = time.perf_counter() - started
                finally:
                    preloaded.stop()
            finally:
                os.environ.clear()
                os.environ.update(env_backup)
            directory = tempfile.mkdtemp(prefix="bench-s3-redis-")
            shutil.copy(Path(scratch) / "node.rdb", Path(directory) / "dump.rdb")
            started = time.perf_counter()
            redis = Server("redis", ["--dir", directory, "--dbfilename", "dump.rdb"])
            try:
                wait_until(lambda: redis.info("persistence").get("loading") == "0", 600, 0.002)
                redis_load_seconds = time.perf_counter() - started
            finally:
                redis.stop()
                shutil.rmtree(directory, ignore_errors=True)
        finally:
            subprocess.run([str(ROOT / "scripts/testbed/garage-stop.sh"), str(Path(scratch) / "garage")],
                           capture_output=True, check=False)
    print(f"  local {local_seconds:.2f}s  to Garage {s3_seconds:.2f}s  preload {preload_seconds:.2f}s  "
          f"redis local load {redis_load_seconds:.2f}s", file=sys.stderr)
    label = f"{keys:,} x 100 B"
    rows.append(Row("s3", f"{label}: snapshot seconds, to Garage (node) vs to local disk (node)", local_seconds,
                    s3_seconds, "s", 1.3, higher_is_better=False, notes="peer column: the node's own local save"))
    rows.append(Row("s3", f"{label}: preload from Garage (node) vs Redis loading from local disk", redis_load_seconds,
                    preload_seconds, "s", 0.7, higher_is_better=False))
    return rows


def format_table(rows: list[Row]) -> str:
    lines = [
        "| section | metric | Redis 7 | ferrocache | ratio (node/Redis) | target | met | notes |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        def show(value: float) -> str:
            return f"{value:,.0f}" if value >= 100 else f"{value:.3f}"
        lines.append(f"| {row.section} | {row.metric} | {show(row.redis)} | {show(row.node)} | "
                     f"{row.ratio:.2f}x | {row.target_text()} | {row.met()} | {row.notes} |")
    return "\n".join(lines)


class StolenTime:
    """The share of the machine's CPU time the hypervisor gave to other guests (`steal` in
    /proc/stat) while a section ran: on a shared host, the noise that moves both servers' figures."""

    def __init__(self) -> None:
        self.before = self.read()

    @staticmethod
    def read() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        steal = fields[7] if len(fields) > 7 else 0
        return steal, sum(fields[:8])

    def percent(self) -> float:
        steal, total = self.read()
        elapsed = total - self.before[1]
        return 100 * (steal - self.before[0]) / elapsed if elapsed else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--only", default="throughput,memory,snapshot,s3", help="comma-separated sections to run")
    parser.add_argument("--markdown", help="also write the table into this markdown file")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per snapshot and write load, per server; the median counts (default 3)")
    # A single pair's p99 ratio moves over 0.6-1.7x on both servers (a few host hiccups decide
    # a run's slowest 1%); with 5 pairs the median still moved by +-0.3 from run to run.
    parser.add_argument("--pairs", type=int, default=9,
                        help="back-to-back Redis and node runs per throughput test; the median of their "
                             "ratios counts (default 9)")
    options = parser.parse_args()
    if not NODE_BINARY.exists():
        print(f"build the node first: cargo build --release -p ferrocache-node ({NODE_BINARY})", file=sys.stderr)
        return 2
    sections = set(options.only.split(","))
    rows: list[Row] = []
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    print(f"ferrocache bench: Redis {redis_version} vs {NODE_BINARY.name}, {os.cpu_count()} cores", file=sys.stderr)
    runs = [
        ("throughput", "throughput and latency (redis-benchmark, 50 clients)",
         lambda: bench_throughput(options.quick, max(1, options.pairs))),
        ("memory", "memory (RSS growth after loading)", lambda: bench_memory(options.quick)),
        ("s3", "snapshots to S3 (Garage) and preload", lambda: bench_s3(options.quick)),
        ("snapshot", "snapshots (BGSAVE, write load during a save, load at start)",
         lambda: bench_snapshots(options.quick, max(1, options.repeat))),
    ]
    stolen = []
    for name, title, run in runs:
        if name not in sections:
            continue
        print(f"{title}:", file=sys.stderr)
        clock = StolenTime()
        rows += run()
        stolen.append(f"{name} {clock.percent():.1f}%")
        print(f"  CPU time stolen by the host meanwhile: {stolen[-1]}", file=sys.stderr)
    table = format_table(rows) + "\n\nCPU time stolen by the host during each section: " + ", ".join(stolen) + "."
    print(table)
    if options.markdown:
        Path(options.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
