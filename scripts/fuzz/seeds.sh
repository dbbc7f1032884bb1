#!/usr/bin/env bash
# Regenerates the seed corpora under fuzz/corpus/:
#   rdb_loader/redis7-*.rdb   RDB files written by a real redis-server 7 (SAVE)
#   rdb_loader/node-*.rdb     the same datasets saved by ferrocache-node
#   rdb_loader/golden-*.rdb   the older-format files of node/tests/data/rdb/
#   dump_payload/redis7-*     raw DUMP payloads from redis-server 7, one a key
#   dump_payload/node-*       the same from the node
#   dump_payload/corrupt-*    Redis's own corrupt RESTORE payloads (corrupt-dump.tcl)
#   resp_parser/*             request streams: inline, multibulk, pipelined
# Each dataset stays small (seeds must be < 64 KiB): the "big" encodings
# (quicklists of several nodes, hashtable hashes and sets, skiplist sorted
# sets, compressed list nodes) are reached by lowering Redis's thresholds
# with CONFIG SET rather than by writing many elements.
#
# Usage: scripts/fuzz/seeds.sh            (needs redis-server; builds the node)
# Set FERROCACHE_NODE_BIN to use an already built node binary.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v redis-server >/dev/null || { echo "redis-server is needed (make deps)" >&2; exit 1; }
node_bin="${FERROCACHE_NODE_BIN:-}"
if [[ -z "$node_bin" ]]; then
  nice -n 15 cargo build -q -p ferrocache-node
  node_bin="target/debug/ferrocache-node"
fi

export NODE_BIN="$node_bin"
exec python3 - <<'PY'
import os, shutil, socket, subprocess, tempfile, time, pathlib, glob

ROOT = pathlib.Path.cwd()
CORPUS = ROOT / "fuzz" / "corpus"
for target in ("rdb_loader", "dump_payload", "resp_parser"):
    (CORPUS / target).mkdir(parents=True, exist_ok=True)
    for old in glob.glob(str(CORPUS / target / "*")):
        os.remove(old)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A minimal RESP2 client: raw bytes in, raw bytes out."""

    def __init__(self, port):
        deadline = time.time() + 20
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def __call__(self, *args):
        out = b"*%d\r\n" % len(args)
        for arg in args:
            arg = arg if isinstance(arg, bytes) else str(arg).encode()
            out += b"$%d\r\n%s\r\n" % (len(arg), arg)
        self.sock.sendall(out)
        return self._reply()


# Lowered thresholds: every encoding with a handful of elements.
SMALL_LIMITS = [
    ("list-max-listpack-size", "4"),
    ("hash-max-listpack-entries", "4"),
    ("zset-max-listpack-entries", "4"),
    ("set-max-intset-entries", "8"),
]

FUTURE_MS = 4102444800000  # 2100-01-01


def strings(c):
    c("SET", "s:int", "12345")
    c("SET", "s:neg", "-9223372036854775808")
    c("SET", "s:short", "hello")
    c("SET", "s:empty", "")
    c("SET", "s:binary", b"\x00\xff\r\n\x01")
    c("SET", "s:lzf", "abcdefgh" * 40)
    c("SET", "s:incompressible", bytes(range(256)) * 2)
    c("SET", "s:px", "soon", "PX", "3600000")
    c("SET", "s:exat", "later", "PXAT", str(FUTURE_MS))


def lists(c):
    c("RPUSH", "l:small", "1", "a", "300", "-70000", "9223372036854775807")
    c("RPUSH", "l:nodes", *[f"item{i}" for i in range(11)])
    c("RPUSH", "l:long-items", "x" * 100, "y" * 300, "12")
    # Nodes long and repetitive enough that list-compress-depth LZF-compresses them.
    c("RPUSH", "l:compressible", *["abcdefghijklmnopqrstuvwxyz-%02d" % i for i in range(12)])
    c("RPUSH", "l:ints", *[str(v) for v in (0, -1, 127, 128, -4096, 4095, 32767, -32768, 8388607, 2**31, -(2**63))])


def sets(c):
    c("SADD", "set:int16", "1", "2", "3", "-5")
    c("SADD", "set:int32", "70000", "1", "-70000")
    c("SADD", "set:int64", "5000000000", "1", "-5000000000")
    c("SADD", "set:strings", "a", "b", "c")
    c("SADD", "set:big", *[str(i) for i in range(12)])


def hashes(c):
    c("HSET", "h:small", "f", "1", "g", "two", "n", "-17")
    c("HSET", "h:table", *[x for i in range(6) for x in (f"field{i}", f"value{i}")])
    c("HSET", "h:long-value", "f", "v" * 200)


def zsets(c):
    c("ZADD", "z:small", "1.5", "a", "-2", "b", "0", "c")
    c("ZADD", "z:skiplist", *[x for i in range(6) for x in (str(i * 1.25 - 3), f"m{i}")])
    c("ZADD", "z:inf", "inf", "top", "-inf", "bottom", "3e100", "huge")
    c("ZADD", "z:long-member", "7", "m" * 100)


def expiries(c):
    for kind, build in (("s", lambda k: c("SET", k, "v")), ("l", lambda k: c("RPUSH", k, "a", "b")),
                        ("h", lambda k: c("HSET", k, "f", "v")), ("z", lambda k: c("ZADD", k, "1", "m"))):
        key = f"ttl:{kind}"
        build(key)
        c("PEXPIREAT", key, str(FUTURE_MS))


def databases(c):
    for db in (0, 1, 5, 15):
        c("SELECT", str(db))
        c("SET", f"db{db}:s", str(db))
        c("RPUSH", f"db{db}:l", "x")
    c("SELECT", "0")


DATASETS = {
    "strings": (strings,),
    "lists": (lists,),
    "sets": (sets,),
    "hashes": (hashes,),
    "zsets": (zsets,),
    "expiries": (expiries,),
    "databases": (databases,),
    "all": (strings, lists, sets, hashes, zsets, expiries),
}


def start(binary, extra, directory):
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "",
            "--appendonly", "no"] + extra
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Client(port)
    for _ in range(200):
        try:
            if client("PING") == "PONG":
                break
        except (RuntimeError, EOFError):
            pass
        time.sleep(0.05)
    return proc, client


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def generate(prefix, binary):
    """Every dataset under each setting; returns the number of seeds written."""
    written = 0
    # (variant name, extra server arguments, CONFIG SET pairs)
    variants = [
        ("", [], SMALL_LIMITS),
        ("-defaults", [], []),
        ("-compressed-nodes", [], SMALL_LIMITS + [("list-compress-depth", "1")]),
        ("-nocompress-nochecksum", ["--rdbcompression", "no", "--rdbchecksum", "no"], SMALL_LIMITS),
        ("-lfu", ["--maxmemory-policy", "allkeys-lfu"], SMALL_LIMITS),
        ("-lru", ["--maxmemory-policy", "allkeys-lru"], SMALL_LIMITS),
    ]
    for variant, extra, limits in variants:
        directory = tempfile.mkdtemp(prefix="ferrocache-seeds-")
        try:
            proc, c = start(binary, extra, directory)
            try:
                for name, config in limits:
                    try:
                        c("CONFIG", "SET", name, config)
                    except RuntimeError as error:
                        print(f"{prefix}: CONFIG SET {name} refused: {error}")
                datasets = DATASETS if variant == "" else {"all": DATASETS["all"]}
                for dataset, builders in datasets.items():
                    c("FLUSHALL")
                    for build in builders:
                        build(c)
                    if prefix == "redis7" and dataset == "all" and variant == "":
                        c("FUNCTION", "LOAD", "#!lua name=seedlib\nredis.register_function('f', function() return 1 end)")
                    c("SAVE")
                    data = pathlib.Path(directory, "dump.rdb").read_bytes()
                    if len(data) >= 64 * 1024:
                        raise SystemExit(f"seed {prefix}-{dataset}{variant} is {len(data)} bytes, over 64 KiB")
                    (CORPUS / "rdb_loader" / f"{prefix}-{dataset}{variant}.rdb").write_bytes(data)
                    written += 1
                    if variant == "" and dataset == "all":
                        for db in (0,):
                            c("SELECT", str(db))
                            for key in sorted(c("KEYS", "*")):
                                payload = c("DUMP", key)
                                safe = key.decode().replace(":", "-")
                                (CORPUS / "dump_payload" / f"{prefix}-{safe}.bin").write_bytes(payload)
                                written += 1
                    if variant == "-compressed-nodes":
                        payload = c("DUMP", "l:compressible")
                        (CORPUS / "dump_payload" / f"{prefix}-l-compressible-compressed.bin").write_bytes(payload)
                        written += 1
            finally:
                stop(proc)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return written


count = generate("redis7", shutil.which("redis-server"))
print(f"redis-server 7: {count} seeds")
count = generate("node", os.environ["NODE_BIN"])
print(f"ferrocache-node: {count} seeds")

# The older formats Redis's own test assets hold (RDB versions 3 to 9).
for path in sorted((ROOT / "node" / "tests" / "data" / "rdb").glob("*.rdb")):
    if path.stat().st_size < 64 * 1024:
        shutil.copy(path, CORPUS / "rdb_loader" / f"golden-{path.name}")

# Redis's corrupt RESTORE payloads: each exercises a validation path.
lines = (ROOT / "node" / "tests" / "data" / "rdb" / "corrupt-dump-payloads.txt").read_text().splitlines()
for line in lines:
    if line.startswith("#") or not line.strip():
        continue
    _name, number, payload = line.split()
    (CORPUS / "dump_payload" / f"corrupt-dump-tcl-line-{number}.bin").write_bytes(bytes.fromhex(payload))


# Request streams. Two header bytes first: options (bit 0 unauthenticated,
# bits 1-2 the bulk limit, bits 3-4 the largest read) and the seed of the
# read sizes; see fuzz/src/checks.rs.
def multibulk(*args):
    out = b"*%d\r\n" % len(args)
    for arg in args:
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


RESP = {
    "inline-ping": b"PING\r\n",
    "inline-quoted": b"SET \"a b\" 'c\\'d' \"\\x41\\n\\t\"\r\nGET 'a b'\n",
    "inline-blank-lines": b"\r\n\n  \r\nECHO   spaced    out  \r\n",
    "multibulk-set-get": multibulk(b"SET", b"key", b"value") + multibulk(b"GET", b"key"),
    "multibulk-binary": multibulk(b"SET", b"k\x00\r\n", bytes(range(256))),
    "multibulk-empty-args": b"*0\r\n*-1\r\n" + multibulk(b"ECHO", b""),
    "pipelined-mixed": multibulk(b"PING") + b"PING\r\n" + multibulk(b"MSET", b"a", b"1", b"b", b"2") * 3
    + b"GET a\r\n",
    "pipelined-restore": multibulk(b"RESTORE", b"k", b"0", b"\x00\x03abc\x0a\x00" + b"\x00" * 8),
    "large-bulk": multibulk(b"SET", b"big", b"x" * 3000),
    "error-bad-count": b"*x\r\n",
    "error-expected-bulk": b"*1\r\n+foo\r\n",
    "error-unbalanced-quotes": b"SET \"unterminated\r\n",
    "error-negative-bulk": b"*1\r\n$-5\r\n",
}
HEADERS = [(b"\x00\x2a", ""), (b"\x18\x07", "-bytewise"), (b"\x01\x2a", "-unauthenticated"),
           (b"\x04\x11", "-bulk-limit-5")]
for name, stream in RESP.items():
    for header, suffix in HEADERS if name in ("pipelined-mixed", "multibulk-set-get") else HEADERS[:1]:
        (CORPUS / "resp_parser" / f"{name}{suffix}").write_bytes(header + stream)

for target in ("rdb_loader", "dump_payload", "resp_parser"):
    files = list((CORPUS / target).iterdir())
    print(f"{target}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")
PY
