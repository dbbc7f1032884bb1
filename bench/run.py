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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_BINARY = ROOT / "target" / "release" / "ferrocache-node"
THROUGHPUT_TESTS = ["set", "get", "incr", "lpush", "lpop", "sadd", "hset", "zadd"]


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
            command = [str(NODE_BINARY), *common]
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
    ratio: float = field(init=False)

    def __post_init__(self) -> None:
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


def redis_benchmark(port: int, test: str, requests: int, pipeline: int) -> dict[str, float]:
    command = [
        "redis-benchmark", "-p", str(port), "-c", "50", "-n", str(requests), "-t", test,
        "-r", "100000", "-P", str(pipeline), "--csv",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(f"  redis-benchmark {test} failed on port {port}: {result.stderr.strip()[:200]}", file=sys.stderr)
        return {"rps": float("nan"), "p50": float("nan"), "p99": float("nan")}
    rows = list(csv.reader(io.StringIO(result.stdout)))
    header, values = rows[0], rows[1]
    parsed = dict(zip(header, values))
    return {
        "rps": float(parsed["rps"]),
        "p50": float(parsed["p50_latency_ms"]),
        "p99": float(parsed["p99_latency_ms"]),
    }


def bench_throughput(quick: bool) -> list[Row]:
    rows: list[Row] = []
    requests_plain = 50_000 if quick else 200_000
    requests_pipelined = 200_000 if quick else 1_000_000
    redis = Server("redis")
    node = Server("node")
    try:
        for test in THROUGHPUT_TESTS:
            for pipeline in (1, 16):
                requests = requests_plain if pipeline == 1 else requests_pipelined
                # Alternate which server goes first so neither always runs on a warmer machine.
                order = [("redis", redis), ("node", node)]
                if THROUGHPUT_TESTS.index(test) % 2:
                    order.reverse()
                results = {}
                for name, server in order:
                    results[name] = redis_benchmark(server.port, test, requests, pipeline)
                label = test.upper() + ("" if pipeline == 1 else " -P 16")
                target = 1.0 if pipeline == 1 else 1.3
                rows.append(Row("throughput", f"{label} ops/s", results["redis"]["rps"], results["node"]["rps"],
                                "ops/s", target))
                if pipeline == 1:
                    rows.append(Row("latency", f"{test.upper()} p50", results["redis"]["p50"], results["node"]["p50"],
                                    "ms", None, higher_is_better=False))
                    rows.append(Row("latency", f"{test.upper()} p99", results["redis"]["p99"], results["node"]["p99"],
                                    "ms", 1.1, higher_is_better=False))
                print(f"  {label:<14} redis {results['redis']['rps']:>12,.0f}/s  "
                      f"node {results['node']['rps']:>12,.0f}/s", file=sys.stderr)
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


def format_table(rows: list[Row]) -> str:
    lines = [
        "| section | metric | Redis 7 | ferrocache | ratio (node/Redis) | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        def show(value: float) -> str:
            return f"{value:,.0f}" if value >= 100 else f"{value:.3f}"
        lines.append(f"| {row.section} | {row.metric} | {show(row.redis)} | {show(row.node)} | "
                     f"{row.ratio:.2f}x | {row.target_text()} | {row.met()} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--only", default="throughput,memory", help="comma-separated sections to run")
    parser.add_argument("--markdown", help="also write the table into this markdown file")
    options = parser.parse_args()
    if not NODE_BINARY.exists():
        print(f"build the node first: cargo build --release -p ferrocache-node ({NODE_BINARY})", file=sys.stderr)
        return 2
    sections = set(options.only.split(","))
    rows: list[Row] = []
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    print(f"ferrocache bench: Redis {redis_version} vs {NODE_BINARY.name}, {os.cpu_count()} cores", file=sys.stderr)
    if "throughput" in sections:
        print("throughput and latency (redis-benchmark, 50 clients):", file=sys.stderr)
        rows += bench_throughput(options.quick)
    if "memory" in sections:
        print("memory (RSS growth after loading):", file=sys.stderr)
        rows += bench_memory(options.quick)
    table = format_table(rows)
    print(table)
    if options.markdown:
        Path(options.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
