"""Bounds-checked reading and plain writing of the protocol's primitive types.

Every length or count a peer declares is checked against the bytes actually present before it
is used, so a lying message raises RemoteProtocolError, never IndexError or struct.error.
"""

from __future__ import annotations

import struct

from .errors import LocalProtocolError, RemoteProtocolError

INT16 = struct.Struct("!h")
UINT16 = struct.Struct("!H")
INT32 = struct.Struct("!i")
UINT32 = struct.Struct("!I")
HEADER = struct.Struct("!cI")       # type byte, length (includes itself, not the type byte)
LENGTH = UINT32


class Reader:
    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes | memoryview, what: str):
        self.data = bytes(data)
        self.pos = 0
        self.what = what

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise RemoteProtocolError(f"{self.what}: truncated message (needs {n} more bytes at offset {self.pos})")

    def int16(self) -> int:
        self._need(2)
        (value,) = INT16.unpack_from(self.data, self.pos)
        self.pos += 2
        return value

    def uint16(self) -> int:
        self._need(2)
        (value,) = UINT16.unpack_from(self.data, self.pos)
        self.pos += 2
        return value

    def int32(self) -> int:
        self._need(4)
        (value,) = INT32.unpack_from(self.data, self.pos)
        self.pos += 4
        return value

    def uint32(self) -> int:
        self._need(4)
        (value,) = UINT32.unpack_from(self.data, self.pos)
        self.pos += 4
        return value

    def byte(self) -> int:
        self._need(1)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, n: int) -> bytes:
        self._need(n)
        value = self.data[self.pos:self.pos + n]
        self.pos += n
        return value

    def rest(self) -> bytes:
        value = self.data[self.pos:]
        self.pos = len(self.data)
        return value

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise RemoteProtocolError(f"{self.what}: string without terminator")
        raw = self.data[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            # Servers and clients may use other client_encodings; keep the bytes recoverable.
            return raw.decode("utf-8", "surrogateescape")

    def count(self, item_size: int) -> int:
        """A count of items at least `item_size` bytes each, checked against what is left.
        Counts are unsigned on the wire (PostgreSQL reads them with pq_getmsgint(msg, 2))."""
        n = self.uint16()
        if n * item_size > len(self.data) - self.pos:
            raise RemoteProtocolError(f"{self.what}: count {n} exceeds message")
        return n

    def value(self) -> bytes | None:
        """An int32-length-prefixed value; -1 is NULL."""
        n = self.int32()
        if n == -1:
            return None
        if n < 0:
            raise RemoteProtocolError(f"{self.what}: negative value length {n}")
        return self.take(n)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise RemoteProtocolError(f"{self.what}: {len(self.data) - self.pos} unexpected trailing bytes")


def cstring(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise LocalProtocolError("a protocol string cannot contain NUL")
    return raw + b"\0"


def frame(type_code: bytes, body: bytes) -> bytes:
    return HEADER.pack(type_code, len(body) + 4) + body


def values(items: list[bytes | None] | tuple[bytes | None, ...]) -> bytes:
    parts = []
    for item in items:
        if item is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            parts.append(INT32.pack(len(item)))
            parts.append(item)
    return b"".join(parts)


def count(n: int) -> bytes:
    if not 0 <= n <= 0xFFFF:
        raise LocalProtocolError(f"{n} items do not fit a protocol count (at most 65535)")
    return UINT16.pack(n)


def int16_list(items) -> bytes:
    return count(len(items)) + b"".join(INT16.pack(i) for i in items)
