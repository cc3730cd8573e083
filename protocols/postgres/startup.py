"""The startup phase: messages a frontend sends before it has a type byte.

Each is `int32 length, int32 code, ...`. The code is a protocol version (3.x) for
StartupMessage, or one of the magic request codes below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .errors import RemoteProtocolError
from .wire import INT32, UINT32, Reader, cstring

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102
PROTOCOL_3_0 = 3 << 16


def _startup_frame(body: bytes) -> bytes:
    return INT32.pack(len(body) + 4) + body


@dataclass(slots=True)
class StartupMessage:
    parameters: dict[str, str] = field(default_factory=dict)
    version: int = PROTOCOL_3_0

    @property
    def user(self) -> str:
        return self.parameters.get("user", "")

    @property
    def database(self) -> str:
        return self.parameters.get("database") or self.user

    def encode(self) -> bytes:
        body = INT32.pack(self.version)
        body += b"".join(cstring(k) + cstring(v) for k, v in self.parameters.items()) + b"\0"
        return _startup_frame(body)

    @classmethod
    def decode(cls, body: bytes) -> "StartupMessage":
        r = Reader(body, "StartupMessage")
        version = r.int32()
        major = version >> 16
        if major != 3:
            raise RemoteProtocolError(
                f"unsupported frontend protocol {major}.{version & 0xFFFF}: server supports 3.0 to 3.0",
                sqlstate="0A000")
        parameters = {}
        while True:
            name = r.cstring()
            if not name:
                break
            parameters[name] = r.cstring()
        r.end()
        if "user" not in parameters:
            raise RemoteProtocolError("no PostgreSQL user name specified in startup packet", sqlstate="28000")
        return cls(parameters, version)


@dataclass(slots=True)
class _Request:
    CODE: ClassVar[int]

    def encode(self) -> bytes:
        return _startup_frame(INT32.pack(self.CODE))

    @classmethod
    def decode(cls, body: bytes):
        if len(body) != 4:
            raise RemoteProtocolError(f"{cls.__name__}: bad length")
        return cls()


@dataclass(slots=True)
class SSLRequest(_Request):
    CODE: ClassVar[int] = SSL_REQUEST_CODE


@dataclass(slots=True)
class GSSENCRequest(_Request):
    CODE: ClassVar[int] = GSSENC_REQUEST_CODE


@dataclass(slots=True)
class CancelRequest:
    CODE: ClassVar[int] = CANCEL_REQUEST_CODE
    process_id: int
    secret: bytes

    def encode(self) -> bytes:
        return _startup_frame(INT32.pack(self.CODE) + UINT32.pack(self.process_id) + self.secret)

    @classmethod
    def decode(cls, body: bytes) -> "CancelRequest":
        r = Reader(body, "CancelRequest")
        r.int32()
        pid = r.uint32()
        secret = r.rest()
        if not 4 <= len(secret) <= 256:
            raise RemoteProtocolError(f"CancelRequest: secret key of {len(secret)} bytes")
        return cls(pid, secret)


StartupPhaseMessage = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest


def decode_startup(body: bytes) -> StartupPhaseMessage:
    """Decode the body (after the length) of a startup-phase message."""
    if len(body) < 4:
        raise RemoteProtocolError("startup packet too short")
    (code,) = INT32.unpack_from(body)
    if code == SSL_REQUEST_CODE:
        return SSLRequest.decode(body)
    if code == GSSENC_REQUEST_CODE:
        return GSSENCRequest.decode(body)
    if code == CANCEL_REQUEST_CODE:
        return CancelRequest.decode(body)
    return StartupMessage.decode(body)
