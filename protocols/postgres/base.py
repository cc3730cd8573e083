"""The base of every message type: `decode(body)` from what follows the type byte and length,
`encode()` to the whole message; and the messages with no body."""

from __future__ import annotations

from typing import ClassVar

from .errors import RemoteProtocolError


class Message:
    TYPE: ClassVar[bytes]
    __slots__ = ()

    @classmethod
    def decode(cls, body: bytes):
        raise NotImplementedError

    def encode(self) -> bytes:
        raise NotImplementedError


class EmptyMessage(Message):
    """Messages with no body."""

    @classmethod
    def decode(cls, body: bytes):
        if body:
            raise RemoteProtocolError(f"{cls.__name__}: unexpected body of {len(body)} bytes")
        return cls()

    def encode(self) -> bytes:
        return self.TYPE + b"\0\0\0\4"

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))

    def __repr__(self):
        return f"{type(self).__name__}()"
