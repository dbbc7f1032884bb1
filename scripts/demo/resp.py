"""A minimal RESP2 client over a socket (Python standard library only), for
the demo's data loader and checker: pipelined commands, replies as Python
values (bytes, int, str for status replies, lists, None, ReplyError)."""

import socket


class ReplyError(Exception):
    """An error reply (`-ERR ...`); returned, not raised, inside pipelines."""


def encode(command):
    """The RESP array of bulk strings for one command (str, bytes or int arguments)."""
    out = bytearray(b"*%d\r\n" % len(command))
    for argument in command:
        if isinstance(argument, int):
            argument = str(argument).encode()
        elif isinstance(argument, str):
            argument = argument.encode()
        out += b"$%d\r\n%s\r\n" % (len(argument), argument)
    return bytes(out)


class Connection:
    def __init__(self, address, timeout=120):
        host, port = address.rsplit(":", 1)
        self.address = address
        self.socket = socket.create_connection((host, int(port)), timeout=timeout)
        self.reader = self.socket.makefile("rb", buffering=1 << 20)

    def close(self):
        self.reader.close()
        self.socket.close()

    def pipeline(self, commands):
        """Sends every command, then reads one reply per command."""
        self.socket.sendall(b"".join(encode(command) for command in commands))
        return [self._read() for _ in commands]

    def call(self, *command):
        reply = self.pipeline([command])[0]
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def _line(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"{self.address} closed the connection")
        return line[:-2]

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            data = self.reader.read(length + 2)
            if len(data) != length + 2:
                raise ConnectionError(f"{self.address} closed the connection")
            return data[:-2]
        if kind == b"*":
            length = int(rest)
            if length < 0:
                return None
            return [self._read() for _ in range(length)]
        raise ConnectionError(f"unexpected reply from {self.address}: {line[:80]!r}")
