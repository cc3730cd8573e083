"""The backend's messages (server to client). DataRow stays bytes until someone asks for its
values: the hot path forwards it undecoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .errors import ProtocolError, RemoteProtocolError
from .wire import INT32, UINT32, Reader, count, cstring, frame, int16_list, values

from .base import EmptyMessage, Message

AUTH_OK, AUTH_CLEARTEXT, AUTH_MD5, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL = 0, 3, 5, 10, 11, 12


@dataclass(slots=True)
class Authentication(Message):
    """Every 'R' message. `code` says which: 0 Ok, 3 CleartextPassword, 5 MD5Password (data is
    the 4-byte salt), 10 SASL (data lists mechanisms), 11 SASLContinue, 12 SASLFinal, and the
    GSS/SSPI codes, whose data passes through as bytes."""
    TYPE: ClassVar[bytes] = b"R"
    code: int
    data: bytes = b""

    @classmethod
    def decode(cls, body):
        r = Reader(body, "Authentication")
        code = r.int32()
        data = r.rest()
        if code in (AUTH_OK, AUTH_CLEARTEXT) and data:
            raise RemoteProtocolError(f"Authentication({code}): unexpected body")
        if code == AUTH_MD5 and len(data) != 4:
            raise RemoteProtocolError("AuthenticationMD5Password: salt must be 4 bytes")
        if code == AUTH_SASL and not (data == b"\0" or data.endswith(b"\0\0")):
            raise RemoteProtocolError("AuthenticationSASL: mechanism list not terminated")
        return cls(code, data)

    def encode(self):
        return frame(self.TYPE, INT32.pack(self.code) + self.data)

    @property
    def mechanisms(self) -> list[str]:
        return [m.decode("utf-8", "surrogateescape") for m in self.data.split(b"\0") if m]

    @classmethod
    def sasl(cls, mechanisms: list[str]) -> "Authentication":
        return cls(AUTH_SASL, b"".join(cstring(m) for m in mechanisms) + b"\0")


@dataclass(slots=True)
class ParameterStatus(Message):
    TYPE: ClassVar[bytes] = b"S"
    name: str
    value: str

    @classmethod
    def decode(cls, body):
        r = Reader(body, "ParameterStatus")
        name, value = r.cstring(), r.cstring()
        r.end()
        return cls(name, value)

    def encode(self):
        return frame(self.TYPE, cstring(self.name) + cstring(self.value))


@dataclass(slots=True)
class BackendKeyData(Message):
    TYPE: ClassVar[bytes] = b"K"
    process_id: int
    secret: bytes           # 4 bytes in protocol 3.0; up to 256 in 3.2

    @classmethod
    def decode(cls, body):
        r = Reader(body, "BackendKeyData")
        pid = r.uint32()
        secret = r.rest()
        if not 4 <= len(secret) <= 256:
            raise RemoteProtocolError(f"BackendKeyData: secret key of {len(secret)} bytes")
        return cls(pid, secret)

    def encode(self):
        return frame(self.TYPE, UINT32.pack(self.process_id) + self.secret)


@dataclass(slots=True)
class NegotiateProtocolVersion(Message):
    TYPE: ClassVar[bytes] = b"v"
    newest_minor: int
    unrecognized: tuple[str, ...] = ()

    @classmethod
    def decode(cls, body):
        r = Reader(body, "NegotiateProtocolVersion")
        minor = r.int32()
        n = r.int32()
        if n < 0 or n > len(body):
            raise RemoteProtocolError(f"NegotiateProtocolVersion: bad option count {n}")
        options = tuple(r.cstring() for _ in range(n))
        r.end()
        return cls(minor, options)

    def encode(self):
        return frame(self.TYPE, INT32.pack(self.newest_minor) + INT32.pack(len(self.unrecognized))
                     + b"".join(cstring(o) for o in self.unrecognized))


@dataclass(slots=True, frozen=True)
class Field:
    name: str
    table_oid: int = 0
    column: int = 0          # attribute number, 0 when not a table column
    type_oid: int = 25
    type_size: int = -1
    type_modifier: int = -1
    format: int = 0          # 0 text, 1 binary


_FIELD_TAIL = __import__("struct").Struct("!IhIhih")


@dataclass(slots=True)
class RowDescription(Message):
    TYPE: ClassVar[bytes] = b"T"
    fields: tuple[Field, ...]

    @classmethod
    def decode(cls, body):
        r = Reader(body, "RowDescription")
        n = r.count(19)  # name terminator + 18 bytes of attributes at least
        fields = []
        for _ in range(n):
            name = r.cstring()
            r._need(18)
            table, column, type_oid, size, modifier, fmt = _FIELD_TAIL.unpack_from(r.data, r.pos)
            r.pos += 18
            fields.append(Field(name, table, column, type_oid, size, modifier, fmt))
        r.end()
        return cls(tuple(fields))

    def encode(self):
        body = count(len(self.fields)) + b"".join(
            cstring(f.name) + _FIELD_TAIL.pack(f.table_oid, f.column, f.type_oid, f.type_size,
                                               f.type_modifier, f.format)
            for f in self.fields)
        return frame(self.TYPE, body)


class DataRow(Message):
    """A row, kept as its body bytes; `values` decodes (with bounds checks) on demand."""
    TYPE: ClassVar[bytes] = b"D"
    __slots__ = ("body",)

    def __init__(self, body: bytes):
        self.body = bytes(body)

    @classmethod
    def decode(cls, body):
        return cls(body)

    @classmethod
    def from_values(cls, items) -> "DataRow":
        return cls(count(len(items)) + values(items))

    @property
    def values(self) -> tuple[bytes | None, ...]:
        r = Reader(self.body, "DataRow")
        items = tuple(r.value() for _ in range(r.count(4)))
        r.end()
        return items

    def encode(self):
        return frame(self.TYPE, self.body)

    def __eq__(self, other):
        return isinstance(other, DataRow) and other.body == self.body

    def __repr__(self):
        try:
            return f"DataRow({self.values!r})"
        except ProtocolError:
            return f"DataRow(<malformed {len(self.body)} bytes>)"


@dataclass(slots=True)
class CommandComplete(Message):
    TYPE: ClassVar[bytes] = b"C"
    tag: str

    @classmethod
    def decode(cls, body):
        r = Reader(body, "CommandComplete")
        tag = r.cstring()
        r.end()
        return cls(tag)

    def encode(self):
        return frame(self.TYPE, cstring(self.tag))

    @property
    def rows(self) -> int | None:
        """Row count of the tag ("SELECT 5", "INSERT 0 5", "COPY 5"), None when it has none."""
        last = self.tag.rpartition(" ")[2]
        return int(last) if last.isascii() and last.isdigit() else None


class EmptyQueryResponse(EmptyMessage):
    TYPE = b"I"


class ParseComplete(EmptyMessage):
    TYPE = b"1"


class BindComplete(EmptyMessage):
    TYPE = b"2"


class CloseComplete(EmptyMessage):
    TYPE = b"3"


class NoData(EmptyMessage):
    TYPE = b"n"


class PortalSuspended(EmptyMessage):
    TYPE = b"s"


@dataclass(slots=True)
class ErrorResponse(Message):
    """Fields by their one-letter code: S severity, V severity (not localized), C SQLSTATE,
    M message, D detail, H hint, P position, W where, ... in the order they came."""
    TYPE: ClassVar[bytes] = b"E"
    fields: dict[str, str] = field(default_factory=dict)

    @classmethod
    def decode(cls, body):
        r = Reader(body, cls.__name__)
        fields = {}
        while True:
            code = r.byte()
            if code == 0:
                break
            fields[chr(code)] = r.cstring()
        r.end()
        return cls(fields)

    def encode(self):
        body = b"".join(code.encode("latin-1") + cstring(value) for code, value in self.fields.items())
        return frame(self.TYPE, body + b"\0")

    @classmethod
    def make(cls, sqlstate: str, message: str, severity: str = "ERROR", **more: str):
        fields = {"S": severity, "V": severity, "C": sqlstate, "M": message}
        fields.update(more)
        return cls(fields)

    @property
    def sqlstate(self) -> str:
        return self.fields.get("C", "")

    @property
    def message(self) -> str:
        return self.fields.get("M", "")

    @property
    def severity(self) -> str:
        return self.fields.get("V", self.fields.get("S", ""))


@dataclass(slots=True)
class NoticeResponse(ErrorResponse):
    TYPE: ClassVar[bytes] = b"N"

    @classmethod
    def make(cls, sqlstate: str, message: str, severity: str = "NOTICE", **more: str):
        return super(NoticeResponse, cls).make(sqlstate, message, severity, **more)


@dataclass(slots=True)
class NotificationResponse(Message):
    TYPE: ClassVar[bytes] = b"A"
    process_id: int
    channel: str
    payload: str

    @classmethod
    def decode(cls, body):
        r = Reader(body, "NotificationResponse")
        pid = r.uint32()
        channel, payload = r.cstring(), r.cstring()
        r.end()
        return cls(pid, channel, payload)

    def encode(self):
        return frame(self.TYPE, UINT32.pack(self.process_id) + cstring(self.channel) + cstring(self.payload))


@dataclass(slots=True)
class ParameterDescription(Message):
    TYPE: ClassVar[bytes] = b"t"
    type_oids: tuple[int, ...]

    @classmethod
    def decode(cls, body):
        r = Reader(body, "ParameterDescription")
        n = r.uint16()  # up to 65535 parameters: unsigned on the wire
        if n * 4 > len(body) - 2:
            raise RemoteProtocolError(f"ParameterDescription: count {n} exceeds message")
        oids = tuple(r.uint32() for _ in range(n))
        r.end()
        return cls(oids)

    def encode(self):
        return frame(self.TYPE, count(len(self.type_oids)) + b"".join(UINT32.pack(o) for o in self.type_oids))


@dataclass(slots=True)
class ReadyForQuery(Message):
    TYPE: ClassVar[bytes] = b"Z"
    status: str          # "I" idle, "T" in transaction, "E" failed transaction

    @classmethod
    def decode(cls, body):
        if len(body) != 1 or body[:1] not in (b"I", b"T", b"E"):
            raise RemoteProtocolError(f"ReadyForQuery: bad status {bytes(body)!r}")
        return cls(chr(body[0]))

    def encode(self):
        return frame(self.TYPE, self.status.encode())


@dataclass(slots=True)
class _CopyResponse(Message):
    format: int                     # 0 text, 1 binary
    column_formats: tuple[int, ...] = ()

    @classmethod
    def decode(cls, body):
        r = Reader(body, cls.__name__)
        fmt = r.byte()
        if fmt not in (0, 1):
            raise RemoteProtocolError(f"{cls.__name__}: bad format {fmt}")
        formats = tuple(r.int16() for _ in range(r.count(2)))
        r.end()
        return cls(fmt, formats)

    def encode(self):
        return frame(self.TYPE, bytes([self.format]) + int16_list(self.column_formats))


@dataclass(slots=True)
class CopyInResponse(_CopyResponse):
    TYPE: ClassVar[bytes] = b"G"


@dataclass(slots=True)
class CopyOutResponse(_CopyResponse):
    TYPE: ClassVar[bytes] = b"H"


@dataclass(slots=True)
class CopyBothResponse(_CopyResponse):
    TYPE: ClassVar[bytes] = b"W"


@dataclass(slots=True)
class FunctionCallResponse(Message):
    TYPE: ClassVar[bytes] = b"V"
    result: bytes | None

    @classmethod
    def decode(cls, body):
        r = Reader(body, "FunctionCallResponse")
        result = r.value()
        r.end()
        return cls(result)

    def encode(self):
        return frame(self.TYPE, values([self.result]))
