"""Every message of protocol 3.0, one small type each, with `decode(body)` and `encode()`.

`decode` takes the body (what follows the type byte and length) and `encode` returns the whole
message. Startup-phase messages have no type byte; see startup.py.
The types live in base.py, frontend.py and backend.py; this module holds the tables by type byte.
"""

from __future__ import annotations

from .backend import *  # noqa: F401,F403 - re-exported: the vocabulary of protocols.postgres
from .backend import (AUTH_CLEARTEXT, AUTH_MD5, AUTH_OK, AUTH_SASL, AUTH_SASL_CONTINUE,  # noqa: F401
                      AUTH_SASL_FINAL, Authentication, BackendKeyData, BindComplete, CloseComplete,
                      CommandComplete, CopyBothResponse, CopyInResponse, CopyOutResponse, DataRow,
                      EmptyQueryResponse, ErrorResponse, Field, FunctionCallResponse,
                      NegotiateProtocolVersion, NoData, NoticeResponse, NotificationResponse,
                      ParameterDescription, ParameterStatus, ParseComplete, PortalSuspended,
                      ReadyForQuery, RowDescription)
from .base import Message
from .errors import RemoteProtocolError
from .frontend import *  # noqa: F401,F403
from .frontend import (Bind, Close, CopyData, CopyDone, CopyFail, Describe, Execute, Flush,
                       FunctionCall, Parse, PasswordMessage, Query, Sync, Terminate)

FRONTEND: dict[int, type[Message]] = {m.TYPE[0]: m for m in (
    Query, Parse, Bind, Describe, Execute, Sync, Flush, Close, CopyData, CopyDone, CopyFail,
    FunctionCall, Terminate, PasswordMessage)}

BACKEND: dict[int, type[Message]] = {m.TYPE[0]: m for m in (
    Authentication, ParameterStatus, BackendKeyData, NegotiateProtocolVersion, RowDescription,
    DataRow, CommandComplete, EmptyQueryResponse, ErrorResponse, NoticeResponse,
    NotificationResponse, ParseComplete, BindComplete, CloseComplete, NoData, ParameterDescription,
    PortalSuspended, ReadyForQuery, CopyInResponse, CopyOutResponse, CopyBothResponse,
    FunctionCallResponse, CopyData, CopyDone)}


def decode_frontend(type_code: int, body: bytes) -> Message:
    cls = FRONTEND.get(type_code)
    if cls is None:
        raise RemoteProtocolError(f"invalid frontend message type {chr(type_code)!r}")
    return cls.decode(body)


def decode_backend(type_code: int, body: bytes) -> Message:
    cls = BACKEND.get(type_code)
    if cls is None:
        raise RemoteProtocolError(f"invalid backend message type {chr(type_code)!r}")
    return cls.decode(body)
