#!/usr/bin/env python3
"""Writes to stdout, as RESP for `redis-cli --pipe`, the commands that load the
demo's sample data:

- COUNT keys spread over the five types (strings, lists, hashes, sets, sorted
  sets), every seventh with an expiry time between one and two hours ahead;
  integers, binary values (CR, LF, NUL, non-UTF-8 bytes) and unicode among them;
- a few large values that take Redis's big encodings (a 1 MiB string, a list,
  hash, set, integer set and sorted set of thousands of elements);
- a few readable keys to look at by hand (greeting, counter, queue, user:1,
  tags, leaderboard, session:1).

    scripts/demo/sample-data.py 50000 | redis-cli -h HOST -p PORT --pipe
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import encode  # noqa: E402

FRUITS = ["apple", "banana", "cherry", "damson", "elderberry", "fig", "grape", "kiwi"]


def commands(count, now_ms):
    for i in range(count):
        kind = i % 5
        if kind == 0:
            key = f"string:{i}"
            if i % 1000 == 0:
                value = bytes(range(256)) + b"\r\n\x00" + str(i).encode()
            elif i % 3 == 0:
                value = str(i * 7919)  # an integer, which Redis encodes as one
            elif i % 11 == 0:
                value = f"caf\u00e9 \u2615 {i} \u6771\u4eac"
            else:
                value = f"value-{i}-" + "x" * (i % 64)
            yield ["SET", key, value]
        elif kind == 1:
            key = f"list:{i}"
            yield ["RPUSH", key] + [f"job-{i}-{n}" for n in range(3 + i % 6)]
        elif kind == 2:
            key = f"hash:{i}"
            yield ["HSET", key, "name", f"user {i}", "visits", i % 1000, "fruit", FRUITS[i % len(FRUITS)]]
        elif kind == 3:
            key = f"set:{i}"
            if i % 2:
                yield ["SADD", key] + [i + n for n in range(4)]  # an integer set
            else:
                yield ["SADD", key] + FRUITS[: 2 + i % 6] + [str(i)]
        else:
            key = f"zset:{i}"
            yield ["ZADD", key, 1, "a", "2.5", "b", -i, "c", f"{i / 7:.6f}", f"m{i}"]
        if i % 7 == 0:
            yield ["PEXPIREAT", key, now_ms + 3_600_000 + i * 71]

    yield ["SET", "big:string", os.urandom(512 * 1024).hex()]
    yield ["RPUSH", "big:list"] + [f"element-{n}" for n in range(5000)]
    yield ["HSET", "big:hash"] + [part for n in range(2000) for part in (f"field-{n}", f"value-{n}")]
    yield ["SADD", "big:set"] + [f"member-{n}" for n in range(2000)]
    yield ["SADD", "big:intset"] + list(range(0, 3000, 3))
    yield ["ZADD", "big:zset"] + [part for n in range(2000) for part in (f"{(n - 1000) / 3:.17g}", f"player-{n}")]

    yield ["SET", "greeting", "hello from ferrocache"]
    yield ["SET", "counter", 41]
    yield ["INCR", "counter"]
    yield ["RPUSH", "queue", "job-1", "job-2", "job-3"]
    yield ["HSET", "user:1", "name", "Ada", "lang", "Rust", "visits", 3]
    yield ["SADD", "tags", "cache", "kubernetes", "backup"]
    yield ["ZADD", "leaderboard", 100, "ada", 90, "grace", 80, "linus"]
    yield ["SET", "session:1", "token-abc", "EX", 7200]


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    now_ms = int(time.time() * 1000)
    out = sys.stdout.buffer
    batch = []
    for command in commands(count, now_ms):
        batch.append(encode(command))
        if len(batch) >= 1000:
            out.write(b"".join(batch))
            batch.clear()
    out.write(b"".join(batch))
    out.flush()


if __name__ == "__main__":
    main()
