"""One fuzz target per parser: `check(data: bytes)` holds the target's rule for any input.

The rule, for every target: the input decodes, or raises the parser's own error, never anything
else; policy never turns a failure into "allow"; the masker's output is well-formed. A target
returns quietly when the rule holds and raises (anything but its own error) when it does not.
Both engines (fuzz/engines.py) and the corpus replay (fuzz/test_targets.py) call these.
"""

from __future__ import annotations

import json
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import trio
import trio.testing

from protocols.http import jsonrpc
from protocols.http.sse import SseError, SseParser
from protocols.postgres import (DataRow, Framer, RAW, RemoteProtocolError, decode_backend,
                                decode_frontend, decode_startup)
from wireproxy.config.rulefile import parse_rules
from wireproxy.config.settings import load_config
from wireproxy.config.tomlfile import ConfigError
from wireproxy.http.errors import HttpError
from wireproxy.http.serverconn import Limits, ServerConnection
from wireproxy.masking import Masker, MaskingError, MaskSpec
from wireproxy.masking import copyline
from wireproxy.masking.masker import Column
from wireproxy.policy import Action, Policy
from wireproxy.policy.facts import SqlParseError, extract

FRAMER_CAP = 1 << 16


@dataclass(frozen=True)
class Target:
    name: str
    check: Callable[[bytes], None]
    about: str


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# ------------------------------------------------------------------------------ postgres ---

def _decode_stream(data: bytes, decode) -> None:
    framer = Framer(FRAMER_CAP)
    try:
        for code, whole in framer.feed(data):
            if code == RAW:
                continue
            message = decode(code, whole[5:])
            if isinstance(message, DataRow):
                message.values                       # lazy: decoding them is part of the rule
            assert message.encode()[:1] == whole[:1], (message, whole[:1])
    except RemoteProtocolError:
        pass


def pg_frontend(data: bytes) -> None:
    _decode_stream(data, decode_frontend)


def pg_backend(data: bytes) -> None:
    _decode_stream(data, decode_backend)


def pg_startup(data: bytes) -> None:
    framer = Framer(startup=True)
    try:
        items = framer.feed(data)
        while items:
            ((_code, packet),) = items
            decode_startup(packet[4:])
            items = framer.drain()
    except RemoteProtocolError as exc:
        assert exc.sqlstate in ("08P01", "0A000", "28000"), exc.sqlstate


# ------------------------------------------------------------------------------ policy ---

def _facts(sql: str, dialect: str) -> None:
    try:
        extract(sql, dialect)
    except SqlParseError as exc:
        assert isinstance(exc.message, str)
        assert not exc.internal, exc.message          # an internal error is a bug of ours


def sql_facts_pglast(data: bytes) -> None:
    _facts(_text(data), "postgres")


def sql_facts_sqlglot(data: bytes) -> None:
    _facts(_text(data), "mysql")


_POLICY: dict[str, Policy] = {}
_DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules" / "default.toml"


def _default_policy() -> Policy:
    if "p" not in _POLICY:
        # on_parse_error = "block" is the default, and the pack leaves it so
        _POLICY["p"] = Policy(parse_rules(_DEFAULT_RULES.read_text(), _DEFAULT_RULES))
    return _POLICY["p"]


def policy_judge(data: bytes) -> None:
    """judge_sql never raises, and a text no parser reads is never let through as allow."""
    sql = _text(data)
    decision = _default_policy().judge_sql(sql)
    assert decision.action in tuple(Action), decision
    try:
        extract(sql)
    except SqlParseError:
        assert decision.action is not Action.ALLOW, (sql, decision)


# ------------------------------------------------------------------------------ masking ---

_COLUMNS = [Column("id"), Column("email"), Column("note")]
_PLAN = Masker([MaskSpec("email", columns=("email",), style="partial"),
                MaskSpec("pii", detectors=("credit_card", "email", "us_ssn"), style="partial")],
               hash_key=b"fuzz").for_user("fuzz").plan(_COLUMNS)


def _row_values(body: bytes) -> list[bytes | None]:
    (count,) = struct.unpack_from("!h", body)
    pos, out = 2, []
    for _ in range(count):
        (length,) = struct.unpack_from("!i", body, pos)
        pos += 4
        if length == -1:
            out.append(None)
            continue
        assert 0 <= length and pos + length <= len(body)
        out.append(body[pos:pos + length])
        pos += length
    assert pos == len(body), "trailing bytes"
    return out


def mask_datarow(data: bytes) -> None:
    """A well-formed DataRow body in: a well-formed DataRow of the same width out. Malformed in:
    MaskingError, or bytes (columns past the last planned one go out unwalked, by design)."""
    try:
        width = len(_row_values(data))
    except (AssertionError, struct.error):
        width = None
    try:
        out = _PLAN.rewrite(data)
    except MaskingError:
        assert width is None or width != 3, "a well-formed row of the plan's width was refused"
        return
    assert isinstance(out, bytes)
    if width is not None:
        assert len(_row_values(out)) == width


def mask_copy_line(data: bytes) -> None:
    fmt = "csv" if data[:1] == b"," else "text"
    line = data if data.endswith(b"\n") else data + b"\n"
    try:
        out = _PLAN.rewrite_copy_line(line, fmt)
    except MaskingError:
        return
    assert isinstance(out, bytes)
    assert copyline.split_line(out)[1] == copyline.split_line(line)[1], (line, out)   # same line end


# ------------------------------------------------------------------------------ loaders ---

def rule_file(data: bytes) -> None:
    try:
        parse_rules(_text(data), "fuzz.toml")
    except ConfigError as exc:
        assert "\n" not in str(exc).strip(), str(exc)   # one clear line


def config_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wireproxy.toml"
        path.write_bytes(data)
        try:
            load_config(path)
        except ConfigError as exc:
            assert "\n" not in str(exc).strip(), str(exc)


# ------------------------------------------------------------------------------ http ---

def sse(data: bytes) -> None:
    parser = SseParser(max_event_size=4096)
    events = []
    try:
        half = len(data) // 2
        events += parser.feed(data[:half])
        events += parser.feed(data[half:])
        events += parser.end()
    except SseError:
        return
    assert b"".join(e.raw for e in events) == data


def jsonrpc_mcp(data: bytes) -> None:
    batch = jsonrpc.parse(data)
    if batch is None:
        return
    for message in batch.messages:
        assert isinstance(message, dict)
        jsonrpc.kind(message)
    jsonrpc.encode(batch.messages, batch.is_batch)


def http_request(data: bytes) -> None:
    """Client bytes into the h11-facing server side: a Request, None, or HttpError."""
    async def run():
        ours, theirs = trio.testing.memory_stream_pair()
        await theirs.send_all(data)
        await theirs.send_eof()
        conn = ServerConnection(ours, Limits(max_header_bytes=4096, max_body_bytes=4096,
                                             header_timeout=1, body_timeout=1, idle_timeout=1), "fuzz")
        try:
            with trio.fail_after(5):
                request = await conn.next_request()
        except HttpError as exc:
            assert 400 <= exc.status < 500 or exc.status == 501, exc.status   # 501: unsupported coding
            return
        if request is not None:
            assert isinstance(request.body, bytes) and len(request.body) <= 4096
    trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("pg-frontend", pg_frontend, "framer + frontend decoders (client messages)"),
    Target("pg-backend", pg_backend, "framer + backend decoders (server messages)"),
    Target("pg-startup", pg_startup, "startup phase: framer in startup mode + decode_startup"),
    Target("sql-facts", sql_facts_pglast, "SQL facts extraction, pglast path (postgres)"),
    Target("sql-facts-sqlglot", sql_facts_sqlglot, "SQL facts extraction, sqlglot path (mysql)"),
    Target("policy", policy_judge, "default rules judging any text: never raises, unparsed never allowed"),
    Target("mask-datarow", mask_datarow, "masker: DataRow body in, well-formed DataRow out"),
    Target("mask-copy", mask_copy_line, "masker: COPY text/csv lines"),
    Target("rules", rule_file, "rule file loader: ConfigError of one line, nothing else"),
    Target("config", config_file, "wireproxy.toml loader: ConfigError of one line, nothing else"),
    Target("sse", sse, "SSE parser"),
    Target("jsonrpc", jsonrpc_mcp, "JSON-RPC / MCP message extraction"),
    Target("http-request", http_request, "h11-facing request reading (wireproxy/http/serverconn.py)"),
]}
