"""Incremental framing: feed any chunks, get whole messages (or raw runs) out.

A Framer handles one direction of one connection. `feed(data)` returns a list of items:
  (type_code, message)  a whole message, header included, for types the caller wants to see;
  (RAW, chunk)          bytes of messages whose types are in `passthrough`, streamed as they
                        come, possibly ending inside a message: they are never buffered whole,
                        so a DataRow of any size costs no memory and no decoding.
Consecutive raw messages come out as one chunk, ready for one send.

`startup = True` frames the untyped startup-phase packets (int32 length first); the framer
returns at most one of those per call to feed/drain, so its owner can switch modes between them.
"""

from __future__ import annotations

from .errors import RemoteProtocolError
from .wire import UINT32

RAW = -1
STARTUP = 0          # type code reported for a startup-phase packet
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
MAX_STARTUP_PACKET = 10_000   # PostgreSQL's own limit

_unpack_length = UINT32.unpack_from


class Framer:
    __slots__ = ("max_message_size", "passthrough", "startup", "_buf", "_parts", "_have", "_need", "_skip")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, *,
                 passthrough: frozenset[int] | set[int] = frozenset(), startup: bool = False):
        self.max_message_size = max_message_size
        self.passthrough = frozenset(passthrough)
        self.startup = startup
        self._buf = b""      # the start of an incomplete message
        self._parts: list[bytes] = []   # chunks of a long incomplete message, joined once whole
        self._have = 0
        self._need = 0       # bytes the incomplete message needs in all, once its header is in
        self._skip = 0       # bytes still to come of a raw message already begun

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message."""
        return len(self._buf) + self._have

    @property
    def at_boundary(self) -> bool:
        """True when no partial message is pending: the stream ended cleanly if it ends here."""
        return not self._buf and not self._parts and not self._skip

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._parts:
            # A long message arriving in pieces: keep the pieces, join them once, when whole
            # (joining at every chunk would cost the square of the message's size).
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            data = b"".join(self._parts)
            self._parts, self._have, self._need = [], 0, 0
        elif self._buf:
            data = self._buf + data
            self._buf = b""
        return self._frame(data)

    def drain(self) -> list[tuple[int, bytes]]:
        """Frame what is buffered (after the owner changed `startup` or `passthrough`)."""
        data = b"".join(self._parts) if self._parts else self._buf
        self._buf, self._parts, self._have, self._need = b"", [], 0, 0
        return self._frame(data)

    def take_buffered(self) -> bytes:
        """The bytes of an incomplete message, handed over to another reader (and forgotten)."""
        data = b"".join(self._parts) if self._parts else self._buf
        self._buf, self._parts, self._have, self._need = b"", [], 0, 0
        return data

    def _keep(self, rest: bytes, need: int) -> None:
        """Hold an incomplete message; `need` is its whole size when its header is known."""
        if need and need - len(rest) > 65536:
            self._parts, self._have, self._need = [rest], len(rest), need
        else:
            self._buf = rest

    def _frame(self, data: bytes) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        n = len(data)
        pos = 0
        raw_start = -1            # start of the current run of raw bytes, -1 when none
        if self._skip:
            take = min(self._skip, n)
            self._skip -= take
            raw_start = 0
            pos = take
            if self._skip:
                return [(RAW, data)] if n else []
        if self.startup:
            if raw_start >= 0:
                out.append((RAW, data[raw_start:pos]))
                raw_start = -1
            if n - pos < 4:
                self._buf = data[pos:]
                return out
            (length,) = _unpack_length(data, pos)
            if length < 8 or length - 4 > MAX_STARTUP_PACKET:   # PostgreSQL's bounds, body only
                raise RemoteProtocolError(f"invalid length of startup packet: {length}")
            end = pos + length
            if end > n:
                self._buf = data[pos:]
                return out
            out.append((STARTUP, data[pos:end]))
            self._buf = data[end:]
            return out
        passthrough = self.passthrough
        limit = self.max_message_size
        need = 0
        while n - pos >= 5:
            code = data[pos]
            (length,) = _unpack_length(data, pos + 1)
            if length < 4:
                raise RemoteProtocolError(f"invalid message length {length} for message type {chr(code)!r}")
            if length > limit:
                raise RemoteProtocolError(
                    f"message of type {chr(code)!r} has {length} bytes, over the limit of {limit}",
                )
            end = pos + 1 + length
            if code in passthrough:
                if raw_start < 0:
                    raw_start = pos
                if end > n:
                    self._skip = end - n
                    pos = n
                    break
                pos = end
                continue
            if end > n:
                need = end - pos
                break
            if raw_start >= 0:
                out.append((RAW, data[raw_start:pos]))
                raw_start = -1
            out.append((code, data[pos:end]))
            pos = end
        if raw_start >= 0:
            out.append((RAW, data[raw_start:pos]))
        if pos < n:
            self._keep(data[pos:], need)
        return out
