"""The frontend's messages (client to server), and COPY's, which both sides send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .errors import RemoteProtocolError
from .wire import INT16, INT32, UINT32, Reader, count, cstring, frame, int16_list, values

from .base import EmptyMessage, Message

@dataclass(slots=True)
class Query(Message):
    TYPE: ClassVar[bytes] = b"Q"
    sql: str

    @classmethod
    def decode(cls, body):
        r = Reader(body, "Query")
        sql = r.cstring()
        r.end()
        return cls(sql)

    def encode(self):
        return frame(self.TYPE, cstring(self.sql))


@dataclass(slots=True)
class Parse(Message):
    TYPE: ClassVar[bytes] = b"P"
    statement: str
    sql: str
    param_types: tuple[int, ...] = ()

    @classmethod
    def decode(cls, body):
        r = Reader(body, "Parse")
        statement = r.cstring()
        sql = r.cstring()
        n = r.count(4)
        types = tuple(r.uint32() for _ in range(n))
        r.end()
        return cls(statement, sql, types)

    def encode(self):
        body = cstring(self.statement) + cstring(self.sql) + count(len(self.param_types))
        body += b"".join(UINT32.pack(t) for t in self.param_types)
        return frame(self.TYPE, body)


@dataclass(slots=True)
class Bind(Message):
    TYPE: ClassVar[bytes] = b"B"
    portal: str
    statement: str
    param_formats: tuple[int, ...] = ()
    params: tuple[bytes | None, ...] = ()
    result_formats: tuple[int, ...] = ()

    @classmethod
    def decode(cls, body):
        r = Reader(body, "Bind")
        portal = r.cstring()
        statement = r.cstring()
        param_formats = tuple(r.int16() for _ in range(r.count(2)))
        params = tuple(r.value() for _ in range(r.count(4)))
        result_formats = tuple(r.int16() for _ in range(r.count(2)))
        r.end()
        return cls(portal, statement, param_formats, params, result_formats)

    def encode(self):
        body = (cstring(self.portal) + cstring(self.statement) + int16_list(self.param_formats)
                + count(len(self.params)) + values(self.params) + int16_list(self.result_formats))
        return frame(self.TYPE, body)


@dataclass(slots=True)
class Describe(Message):
    TYPE: ClassVar[bytes] = b"D"
    kind: str           # "S" statement or "P" portal
    name: str

    @classmethod
    def decode(cls, body):
        r = Reader(body, "Describe")
        kind = chr(r.byte())
        if kind not in "SP":
            raise RemoteProtocolError(f"Describe: invalid kind {kind!r}")
        name = r.cstring()
        r.end()
        return cls(kind, name)

    def encode(self):
        return frame(self.TYPE, self.kind.encode() + cstring(self.name))


@dataclass(slots=True)
class Close(Message):
    TYPE: ClassVar[bytes] = b"C"
    kind: str           # "S" statement or "P" portal
    name: str

    @classmethod
    def decode(cls, body):
        r = Reader(body, "Close")
        kind = chr(r.byte())
        if kind not in "SP":
            raise RemoteProtocolError(f"Close: invalid kind {kind!r}")
        name = r.cstring()
        r.end()
        return cls(kind, name)

    def encode(self):
        return frame(self.TYPE, self.kind.encode() + cstring(self.name))


@dataclass(slots=True)
class Execute(Message):
    TYPE: ClassVar[bytes] = b"E"
    portal: str
    max_rows: int = 0

    @classmethod
    def decode(cls, body):
        r = Reader(body, "Execute")
        portal = r.cstring()
        max_rows = r.int32()
        r.end()
        return cls(portal, max_rows)

    def encode(self):
        return frame(self.TYPE, cstring(self.portal) + INT32.pack(self.max_rows))


class Sync(EmptyMessage):
    TYPE = b"S"


class Flush(EmptyMessage):
    TYPE = b"H"


class Terminate(EmptyMessage):
    TYPE = b"X"


class CopyDone(EmptyMessage):
    TYPE = b"c"


@dataclass(slots=True)
class CopyData(Message):
    TYPE: ClassVar[bytes] = b"d"
    data: bytes

    @classmethod
    def decode(cls, body):
        return cls(bytes(body))

    def encode(self):
        return frame(self.TYPE, self.data)


@dataclass(slots=True)
class CopyFail(Message):
    TYPE: ClassVar[bytes] = b"f"
    message: str

    @classmethod
    def decode(cls, body):
        r = Reader(body, "CopyFail")
        message = r.cstring()
        r.end()
        return cls(message)

    def encode(self):
        return frame(self.TYPE, cstring(self.message))


@dataclass(slots=True)
class FunctionCall(Message):
    TYPE: ClassVar[bytes] = b"F"
    function_oid: int
    arg_formats: tuple[int, ...] = ()
    args: tuple[bytes | None, ...] = ()
    result_format: int = 0

    @classmethod
    def decode(cls, body):
        r = Reader(body, "FunctionCall")
        oid = r.uint32()
        arg_formats = tuple(r.int16() for _ in range(r.count(2)))
        args = tuple(r.value() for _ in range(r.count(4)))
        result_format = r.int16()
        r.end()
        return cls(oid, arg_formats, args, result_format)

    def encode(self):
        body = (UINT32.pack(self.function_oid) + int16_list(self.arg_formats)
                + count(len(self.args)) + values(self.args) + INT16.pack(self.result_format))
        return frame(self.TYPE, body)


@dataclass(slots=True)
class PasswordMessage(Message):
    """Every 'p' message: PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse.
    Which one it is depends on the authentication request it answers; see the helpers below."""
    TYPE: ClassVar[bytes] = b"p"
    data: bytes

    @classmethod
    def decode(cls, body):
        return cls(bytes(body))

    def encode(self):
        return frame(self.TYPE, self.data)

    @property
    def password(self) -> str:
        r = Reader(self.data, "PasswordMessage")
        value = r.cstring()
        r.end()
        return value


@dataclass(slots=True)
class SASLInitialResponse(Message):
    TYPE: ClassVar[bytes] = b"p"
    mechanism: str
    data: bytes | None

    @classmethod
    def decode(cls, body):
        r = Reader(body, "SASLInitialResponse")
        mechanism = r.cstring()
        data = r.value()
        r.end()
        return cls(mechanism, data)

    def encode(self):
        return frame(self.TYPE, cstring(self.mechanism) + values([self.data]))


@dataclass(slots=True)
class SASLResponse(Message):
    TYPE: ClassVar[bytes] = b"p"
    data: bytes

    @classmethod
    def decode(cls, body):
        return cls(bytes(body))

    def encode(self):
        return frame(self.TYPE, self.data)
