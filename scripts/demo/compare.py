#!/usr/bin/env python3
"""Checks that two Redis-compatible servers hold the same data, key by key:
the same keys, and for each the same type, value and expiry time (PEXPIRETIME,
to the millisecond). Lists and sorted sets compare in order; hashes and sets
as collections. Prints what it compared; on any difference prints the first
ones and exits 1.

    scripts/demo/compare.py SOURCE_HOST:PORT RESTORED_HOST:PORT [--count-file FILE]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Connection, ReplyError  # noqa: E402

CHUNK = 500
SHOWN = 10
READS = {
    "string": lambda key: ["GET", key],
    "list": lambda key: ["LRANGE", key, 0, -1],
    "hash": lambda key: ["HGETALL", key],
    "set": lambda key: ["SMEMBERS", key],
    "zset": lambda key: ["ZRANGE", key, 0, -1, "WITHSCORES"],
}
NAMES = {"string": "strings", "list": "lists", "hash": "hashes", "set": "sets", "zset": "sorted sets"}


def all_keys(connection):
    keys, cursor = set(), b"0"
    while True:
        cursor, batch = connection.call("SCAN", cursor, "COUNT", 1000)
        keys.update(batch)
        if cursor == b"0":
            return keys


def entries(connection, keys):
    """(type, value, expiry) of each key, read in pipelined chunks."""
    result = {}
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        meta = connection.pipeline([command for key in chunk for command in (["TYPE", key], ["PEXPIRETIME", key])])
        kinds = [meta[2 * n] for n in range(len(chunk))]
        reads = [READS.get(kind, lambda key: ["TYPE", key])(key) for kind, key in zip(kinds, chunk)]
        values = connection.pipeline(reads)
        for n, key in enumerate(chunk):
            kind, value, expiry = kinds[n], values[n], meta[2 * n + 1]
            if kind == "set" and isinstance(value, list):
                value = sorted(value)
            elif kind == "hash" and isinstance(value, list):
                value = sorted(zip(value[0::2], value[1::2]))
            if isinstance(value, ReplyError):
                value = f"error: {value}"
            if not isinstance(expiry, int):
                expiry = f"error: {expiry}"
            result[key] = (kind, value, expiry)
    return result


def name(key):
    return key.decode(errors="backslashreplace")


def shown(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("restored")
    parser.add_argument("--count-file", help="write the number of keys verified here")
    arguments = parser.parse_args()

    source, restored = Connection(arguments.source), Connection(arguments.restored)
    source_keys, restored_keys = all_keys(source), all_keys(restored)
    problems = []
    for key in sorted(source_keys - restored_keys)[:SHOWN]:
        problems.append(f"{name(key)}: missing from the restored cluster")
    for key in sorted(restored_keys - source_keys)[:SHOWN]:
        problems.append(f"{name(key)}: in the restored cluster only")
    missing, extra = len(source_keys - restored_keys), len(restored_keys - source_keys)

    common = sorted(source_keys & restored_keys)
    expected, actual = entries(source, common), entries(restored, common)
    different = 0
    kinds, with_expiry = {}, 0
    for key in common:
        want, got = expected[key], actual[key]
        kinds[want[0]] = kinds.get(want[0], 0) + 1
        with_expiry += isinstance(want[2], int) and want[2] >= 0
        if want == got:
            continue
        different += 1
        if len(problems) < 3 * SHOWN:
            for what, a, b in zip(("type", "value", "expiry"), want, got):
                if a != b:
                    problems.append(f"{name(key)}: {what} {shown(a)} in the source, {shown(b)} restored")
    source.close()
    restored.close()

    breakdown = ", ".join(f"{kinds[kind]:,} {NAMES.get(kind, kind)}" for kind in sorted(kinds, key=lambda k: -kinds[k]))
    print(f"    {len(source_keys):,} keys in the source: {breakdown}; {with_expiry:,} with an expiry time")
    if missing or extra or different:
        print(
            f"demo: error: the clusters differ: {missing:,} keys missing, {extra:,} extra, {different:,} different",
            file=sys.stderr,
        )
        for problem in problems:
            print(f"    {problem}", file=sys.stderr)
        sys.exit(1)
    if not source_keys:
        print("demo: error: the source holds no keys: nothing was compared", file=sys.stderr)
        sys.exit(1)
    verified = len(common)
    print(f"    {verified:,} of {len(source_keys):,} keys identical in the restored cluster (type, value, expiry time)")
    if arguments.count_file:
        with open(arguments.count_file, "w") as file:
            file.write(f"{verified}\n")


if __name__ == "__main__":
    main()
