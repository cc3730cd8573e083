"""Recording: one session-log record per statement, built as its answers come.

A record starts when the statement is forwarded (its SQL, protocol, decision and rules, masked
bound parameters) and is complete at the answer that ends it: the command tag and row count, the
error, the duration; with `[log] max_result_bytes`, also the result rows as the client got them
(masked), up to that many bytes for the session. Complete records leave as `Recorded` events.
"""

from __future__ import annotations

import struct
import time
import uuid
from typing import Any, Callable

from protocols.postgres import DataRow, ErrorResponse, ProtocolError, RemoteProtocolError

from .protocol import Recorded

_ROW_COMMANDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "FETCH", "MOVE"})

_BINARY_PARAMS = {
    16: lambda v: "true" if v == b"\x01" else "false",                       # bool
    20: lambda v: str(int.from_bytes(v, "big", signed=True)),                 # int8
    21: lambda v: str(int.from_bytes(v, "big", signed=True)),                 # int2
    23: lambda v: str(int.from_bytes(v, "big", signed=True)),                 # int4
    26: lambda v: str(int.from_bytes(v, "big")),                              # oid
    700: lambda v: repr(struct.unpack("!f", v)[0]),                           # float4
    701: lambda v: repr(struct.unpack("!d", v)[0]),                           # float8
    2950: lambda v: str(uuid.UUID(bytes=v)),                                  # uuid
    25: lambda v: v.decode("utf-8", "replace"), 1043: lambda v: v.decode("utf-8", "replace"),
    19: lambda v: v.decode("utf-8", "replace"), 1042: lambda v: v.decode("utf-8", "replace"),
}


class Recorder:
    __slots__ = ("emit", "clock", "mask_param", "result_budget")

    def __init__(self, emit: Callable[[Any], None], *, clock: Callable[[], float] = time.monotonic,
                 mask_param: Callable[[str], str] | None = None, max_result_bytes: int = 0):
        self.emit = emit
        self.clock = clock
        self.mask_param = mask_param         # bound parameters are recorded masked
        self.result_budget = max_result_bytes

    @property
    def capturing(self) -> bool:
        """Result rows still go into records: they must be framed one by one."""
        return self.result_budget > 0

    def statement(self, sql: str, protocol: str, decision, params: list | None = None) -> dict:
        record = {"sql": sql, "protocol": protocol, "decision": decision.action.name.lower(),
                  "t0": self.clock()}
        if decision.matched:
            record["rules"] = list(decision.matched)
        if params is not None:
            record["params"] = params
        return record

    def params(self, bind_message: bytes, types: bytes = b"") -> list:
        formats, params = bind_params(bind_message)
        oids = [int.from_bytes(types[i:i + 4], "big") for i in range(0, len(types), 4)] if types else []
        shown: list = []
        for i, value in enumerate(params):
            fmt = formats[i] if len(formats) > 1 else (formats[0] if formats else 0)
            if value is None:
                shown.append(None)
                continue
            text = value.decode("utf-8", "replace") if fmt == 0 else _binary_param(
                value, oids[i] if i < len(oids) else 0)
            shown.append(self.mask_param(text) if self.mask_param and text[:1] != "<" else text)
        return shown

    def row(self, record: dict, message: bytes) -> None:
        """A result row as the client got it, while the session's budget lasts."""
        values = [None if v is None else v.decode("utf-8", "replace") if v.isascii() or _utf8(v)
                  else "\\x" + v.hex() for v in DataRow(message[5:]).values]
        record.setdefault("result_rows", []).append(values)
        self.result_budget = max(0, self.result_budget - len(message))

    def completion(self, record: dict, message: bytes) -> None:
        tag = message[5:-1].decode("utf-8", "replace")
        record["tag"] = f"{record['tag']}; {tag}" if "tag" in record else tag
        command, _, count = tag.rpartition(" ")
        if command.split(" ", 1)[0] in _ROW_COMMANDS and count.isascii() and count.isdigit():
            record["rows"] = record.get("rows", 0) + int(count)

    def error(self, record: dict, message: bytes) -> None:
        try:
            error = ErrorResponse.decode(message[5:])
        except ProtocolError:
            return
        record["error"] = {"code": error.sqlstate, "message": error.message}

    def finish(self, record: dict) -> None:
        record["duration_ms"] = round((self.clock() - record.pop("t0")) * 1000, 3)
        if "result_rows" in record and record.get("rows", 0) > len(record["result_rows"]):
            record["result_rows_omitted"] = record["rows"] - len(record["result_rows"])
        self.emit(Recorded(record))


_H, _I = struct.Struct("!h"), struct.Struct("!i")


def bind_params(message: bytes) -> tuple[tuple[int, ...], list[bytes | None]]:
    """A whole Bind message's parameter format codes and values, read by slicing (the
    profile's largest cost of recording was Bind.decode): the same checks as Bind.decode, the
    codec's error when the message is malformed."""
    try:
        pos = message.index(b"\0", message.index(b"\0", 5) + 1) + 1    # past portal and statement
        (nformats,) = _H.unpack_from(message, pos)
        formats = struct.unpack_from(f"!{nformats}h", message, pos + 2) if nformats > 0 else ()
        pos += 2 + 2 * max(nformats, 0)
        (nparams,) = _H.unpack_from(message, pos)
        pos += 2
        params: list[bytes | None] = []
        for _ in range(nparams):
            (length,) = _I.unpack_from(message, pos)
            pos += 4
            if length == -1:
                params.append(None)
                continue
            if length < 0 or pos + length > len(message):
                raise RemoteProtocolError("Bind: parameter value past the end of the message")
            params.append(message[pos:pos + length])
            pos += length
    except (ValueError, struct.error):
        raise RemoteProtocolError("Bind: malformed message") from None
    if nformats < 0 or nparams < 0:
        raise RemoteProtocolError("Bind: negative count")
    return formats, params


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _binary_param(value: bytes, type_oid: int) -> str:
    """A binary-format parameter as text for the record, for the types Parse declared."""
    decode = _BINARY_PARAMS.get(type_oid)
    if decode is not None:
        try:
            return decode(value)
        except (ValueError, struct.error):
            pass
    return f"<binary {len(value)} bytes>"
