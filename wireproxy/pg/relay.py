"""PgRelay: the Postgres session as a pure object. Bytes in, bytes out, no I/O.

The session's two pumps feed it what they read (`client_data`, `server_data`) and carry out what
it leaves in its outboxes: `to_client`, `to_server` (lists of bytes, sent in order) and `events`
(plain dicts for logs and the session record). `close_reason` set means: flush and close.

How a statement is stopped: the relay never invents the server's side of the conversation. A
blocked Query or Parse is replaced by a statement that fails to parse, and the server's error
for it is replaced by ours (42501, `blocked by wireproxy rule <id>: ...`). The server thus stays
the one authority on protocol state: an error inside a transaction fails it (25P02 afterwards,
COMMIT answered with ROLLBACK), an error in an extended-protocol batch discards up to Sync and
rolls back the batch's implicit transaction, exactly as PostgreSQL does it for its own errors.
To know which error answers which message, the relay keeps `pending`: one entry per forwarded
message that the server will answer, popped as the answers come.
"""

from __future__ import annotations

import enum
import struct
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from protocols.postgres import (RAW, Bind, CancelRequest, DataRow, ErrorResponse, Framer,
                                FunctionCall, GSSENCRequest, NoticeResponse, NotificationResponse,
                                ParameterStatus,
                                Parse, ProtocolError, Query, RemoteProtocolError, RowDescription,
                                SSLRequest, StartupMessage, decode_startup)
from protocols.postgres.wire import frame
from protocols.postgres.framing import DEFAULT_MAX_MESSAGE_SIZE

from ..masking import Column
from ..policy import Action, Decision
from ..policy.decision import ALLOW
from ..policy.strict import StrictColumns

# Type codes as ints, the way the framer reports them.
_Q, _P, _B, _D, _E, _S, _H, _C, _F, _X = (ord(c) for c in "QPBDESHCFX")
_COPY_DATA, _COPY_DONE, _COPY_FAIL = ord("d"), ord("c"), ord("f")
_ROW, _READY, _ERROR, _COMPLETE, _EMPTY, _SUSPENDED = (ord(c) for c in "DZECIs")
_PARSE_OK, _BIND_OK, _CLOSE_OK = ord("1"), ord("2"), ord("3")
_ROWDESC, _NODATA, _PARAMDESC = ord("T"), ord("n"), ord("t")
_KEYDATA, _AUTH, _PARAMSTATUS = ord("K"), ord("R"), ord("S")

SERVER_MAX_MESSAGE_SIZE = 1 << 30 | 1 << 20   # a value may be 1 GB; allow its framing too
_SERVER_PASSTHROUGH = frozenset({_ROW, _COPY_DATA})


class Phase(enum.Enum):
    STARTUP = "startup"      # waiting for the client's startup packet
    AUTH = "auth"            # startup forwarded; authentication passes through
    READY = "ready"          # normal operation
    CLOSED = "closed"


class Wait(enum.IntEnum):
    """What a forwarded message waits for from the server."""
    QUERY = 0        # ... ReadyForQuery
    FUNCTION = 1     # ... ReadyForQuery
    SYNC = 2         # ReadyForQuery
    PARSE = 3        # ParseComplete
    BIND = 4         # BindComplete
    DESCRIBE = 5     # RowDescription | NoData
    EXECUTE = 6      # CommandComplete | EmptyQueryResponse | PortalSuspended
    CLOSE = 7        # CloseComplete
    LOOKUP = 8       # our own catalog query (a FunctionCall's OID): answered to us, not the client


_ENDS_AT_READY = (Wait.QUERY, Wait.FUNCTION, Wait.SYNC, Wait.LOOKUP)
_UNRESOLVED = object()
_REFUSED = object()      # stands in for limits on an entry whose rows a mask rule refused
_LOOKUP = Wait.LOOKUP

# Columns of user tables whose names a table-qualified mask rule could mean: (table OID, attnum)
# -> schema.table and the column's own name. One read-only query per session, answered to us.
_CATALOG_SQL = ("SELECT c.oid, a.attnum, n.nspname || '.' || c.relname, a.attname "
                "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND a.attname ~* {pattern}")

# The name of a function by OID, schema-qualified, as the policy wants it.
_FUNCTION_NAME_SQL = ("SELECT n.nspname || '.' || p.proname FROM pg_catalog.pg_proc p "
                      "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = {oid}")


class Judge(Protocol):
    """The per-session face of the policy engine (wireproxy.policy.SessionJudge)."""
    version: int                                  # changes when the rules are reloaded
    def query(self, sql: str) -> Any: ...
    def parse(self, sql: str, name: str = "") -> Any: ...
    def close(self, name: str) -> None: ...
    def function(self, name: str | None) -> Any: ...


@dataclass(slots=True)
class Pending:
    wait: Wait
    blocked: Any = None          # the Decision that replaced this message, if any
    record: dict | None = None   # the statement record this answer completes (when recording)
    name: str | None = None      # masking: the portal (Execute, Describe P) or statement (Describe S)
    plan: Any = None             # masking: the row plan of an Execute, once resolved
    kind: str = ""               # Describe: "S" or "P"; LOOKUP: "function" or "catalog"
    limits: Any = None           # volume limits on this statement's rows (policy Limits)
    cut: tuple[str, str] | None = None   # (sqlstate, why) its rows stopped: the client's error at its end
    counts: list | None = None   # [rows, bytes] so far; shared by the Executes of one bound portal
    internal: bool = False       # our own Describe: its answer is read, never forwarded


SESSION_LOG_RULE = "session-log"


def _parse_fields(message: bytes) -> tuple[str, str, bytes]:
    """A Parse's statement name, SQL and parameter type OIDs (packed, decoded only when a record
    needs them): read by slicing, with the same checks as Parse.decode."""
    name, end = _cstring_at(message, 5)
    sql, end = _cstring_at(message, end)
    rest = len(message) - end
    if rest < 2 or rest != 2 + 4 * int.from_bytes(message[end:end + 2], "big"):
        raise RemoteProtocolError("Parse: parameter types do not match their count")
    return name, sql, message[end + 2:]


def _cstring_at(message: bytes, start: int) -> tuple[str, int]:
    """The NUL-terminated name at `start` and the offset after it; the codec's error if none."""
    end = message.find(b"\0", start)
    if end < 0:
        raise RemoteProtocolError(f"message {chr(message[0])!r}: name without terminator")
    return message[start:end].decode("utf-8", "surrogateescape"), end + 1


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


def _catalog_pattern(specs) -> str | None:
    """A PostgreSQL regex literal for the column parts of the mask globs. Name-only globs are
    resolved too: `SELECT email AS e` keeps its origin in RowDescription, and the masker matches
    the column's own name as well as the alias."""
    parts = []
    for spec in specs:
        for glob in spec.columns:
            parts.append(_glob_to_regex(glob.rsplit(".", 1)[-1]))
    if not parts:
        return None
    regex = "^(" + "|".join(sorted(set(parts))) + ")$"
    return "'" + regex.replace("'", "''") + "'"


def _glob_to_regex(glob: str) -> str:
    out = []
    for ch in glob:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch in "[]":
            out.append(ch)
        elif ch.isalnum() or ch == "_":
            out.append(ch)
        else:
            out.append("\\" + ch)
    return "".join(out)


def _well_formed(code: int, message: bytes) -> bool:
    """Cheap shape checks for the messages forwarded without decoding (Describe, Close,
    Execute; Bind is checked where it is read), so the server never sees what we would refuse."""
    if code == _E:
        return message.find(b"\0", 5) == len(message) - 5
    if code == _B:
        return True
    return message[5:6] in (b"S", b"P") and message.find(b"\0", 6) == len(message) - 1


def _unparseable(rule_id: str) -> str:
    """SQL the server rejects at parse time, naming the rule in the server's own log."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in rule_id)[:60]
    return f"wireproxy blocked this statement by rule {safe}"


class PgRelay:
    def __init__(self, *, upstream: str, judge_factory=None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, clock=time.monotonic,
                 recording: bool = False, gate=None, mask_param=None, mask_factory=None):
        self.upstream = upstream
        self.phase = Phase.STARTUP
        self.client = Framer(max_message_size, passthrough={_COPY_DATA}, startup=True)
        self.server = Framer(SERVER_MAX_MESSAGE_SIZE, passthrough=_SERVER_PASSTHROUGH)
        self.to_client: list[bytes] = []
        self.to_server: list[bytes] = []
        self.events: list[dict] = []
        self.close_reason: str | None = None
        self.startup: StartupMessage | None = None
        self.cancel_request: CancelRequest | None = None
        self.backend_key: tuple[int, bytes] | None = None
        self.transaction_status = "I"
        self.pending: deque[Pending] = deque()
        self.discarding = False        # the server is skipping to Sync after an error
        self._outstanding = 0          # plain relaying: answers the server still owes
        self.server_said_fatal = False # the server ended the session with its own FATAL
        self.judge_factory = judge_factory
        self.judge: Judge | None = None
        self.statements: dict[str, tuple[str, int]] = {}   # prepared name -> (sql, rules version)
        self.function_names: dict[int, str | None] = {}    # FunctionCall OIDs resolved so far
        self.held: list[tuple[int, bytes]] | None = None   # client input waiting (see _hold)
        self._holds = 0
        self._lookup: tuple[FunctionCall, bytes] | None = None
        self.clock = clock
        # Recording: statement records come out as events {"event": "statement", ...}.
        self.recording = recording
        self.gate = gate                  # () -> reason | None: refuse statements (fail-closed log)
        self.mask_param = mask_param      # str -> str for bound parameters in records
        self.portals: dict[str, tuple[str, Any, bytes]] = {}   # portal -> (sql, decision, Bind)
        self._inspect = judge_factory is not None or recording or gate is not None
        # Masking: with a masker in force every DataRow, CopyData and message is looked at.
        self.mask_factory = mask_factory
        self.masker = None
        self.strict = None
        self._server_passthrough = _SERVER_PASSTHROUGH
        self.query_plan = None                                  # simple protocol: the current result's
        # Extended protocol: a portal's plan comes from the answer to a Describe P sent after its
        # Bind (the client's, or ours when it sent none); answers arrive in order, so the latest
        # one is the binding an Execute's rows belong to, even when a pipeline rebinds the portal.
        self.portal_plans: dict[str, Any] = {}                  # set when Describe P is answered
        self.described: set[str] = set()                        # portals described since their Bind
        self.columns: dict[tuple[int, int], tuple[str, str]] = {}   # (table oid, attnum) -> table, column
        # Volume limits: rows of limited statements are counted; past a limit they stop and the
        # pump cancels the query upstream (`cancel_upstream`).
        self.session_bytes = 0
        self.result_budget = 0            # bytes of result rows still to record (collect_results)
        self.cursors: dict[str, tuple[Any, list]] = {}   # cursor -> (limits, [rows, bytes])
        self.cancel_upstream = False
        self._limited = 0                 # pending entries that carry limits
        self._lookup_rows: list[tuple] = []

    # ------------------------------------------------------------------ what the pumps call --

    @property
    def wants_upstream(self) -> bool:
        """A StartupMessage arrived: the pump connects to the upstream and flushes to_server."""
        return self.phase is Phase.AUTH and self.startup is not None

    @property
    def busy(self) -> bool:
        """The server owes answers: a vanishing client should cancel the running query."""
        return bool(self.pending) or self._outstanding > 0

    def client_data(self, data: bytes) -> None:
        try:
            phase = self.phase
            if phase is Phase.STARTUP:
                self._startup(data)
            elif phase is not Phase.CLOSED:
                if self._inspect:
                    self._from_client(self.client.feed(data))
                else:
                    self._from_client_plain(self.client.feed(data))
        except ProtocolError as exc:
            self._fatal(exc.sqlstate, f"invalid client message: {exc}", "malformed client input")

    def server_data(self, data: bytes) -> None:
        if self.phase is Phase.CLOSED:
            return
        try:
            if self._inspect:
                self._from_server(self.server.feed(data))
            else:
                self._from_server_plain(self.server.feed(data))
        except ProtocolError as exc:
            self._fatal("08P01", "lost synchronization with upstream server", f"malformed upstream data: {exc}")

    def client_eof(self) -> None:
        if self.phase is not Phase.CLOSED:
            self.close_reason = "client closed" if self.client.at_boundary else "client vanished mid-message"
            self.phase = Phase.CLOSED

    def server_eof(self) -> None:
        """The upstream went away. Tell the client, unless it is mid-message (then just close)."""
        if self.phase is Phase.CLOSED:
            return
        if self.server_said_fatal:      # the client has its reason already; don't add a second
            self.close_reason = "upstream closed after FATAL"
            self.phase = Phase.CLOSED
        elif self.server.at_boundary:
            self._fatal("08006", f"connection to upstream {self.upstream} lost", "upstream lost")
        else:
            self.close_reason = "upstream lost mid-message"
            self.phase = Phase.CLOSED

    def upstream_unreachable(self, detail: str) -> None:
        self._fatal("08001", f"wireproxy could not connect to upstream {self.upstream}",
                    f"upstream unreachable: {detail}", detail=detail)

    def refuse(self, sqlstate: str, message: str, reason: str) -> None:
        """Turn a client away before or after startup (limits, a broken session log, shutdown)."""
        self._fatal(sqlstate, message, reason)

    # ---------------------------------------------------------------------------- startup --

    def _startup(self, data: bytes) -> None:
        items = self.client.feed(data)
        while items:
            (_, packet), = items
            message = decode_startup(packet[4:])
            if isinstance(message, (SSLRequest, GSSENCRequest)):
                self.to_client.append(b"N")   # no TLS yet: sslmode=prefer goes on in plain text
                items = self.client.drain()
            elif isinstance(message, CancelRequest):
                self.cancel_request = message
                self.close_reason = "cancel request"
                self.phase = Phase.CLOSED
                return
            else:
                self.startup = message
                self.phase = Phase.AUTH
                self.client.startup = False
                self.to_server.append(packet)
                if self.judge_factory is not None:
                    self.judge = self.judge_factory(message.user)
                if self.mask_factory is not None:
                    self.masker = self.mask_factory(message.user)
                    if self.masker is not None:
                        strict = self.masker.strict_columns()
                        self.strict = StrictColumns(strict) if strict else None
                        self._server_passthrough = frozenset()
                        self.server.passthrough = frozenset()
                        self._inspect = True
                self.events.append({"event": "startup", "user": message.user,
                                    "database": message.database,
                                    "application_name": message.parameters.get("application_name", "")})
                rest = self.client.drain()
                if rest:
                    self._from_client(rest)
                return

    # ---------------------------------------------------------------------- client -> server --

    def _from_client(self, items: list[tuple[int, bytes]]) -> None:
        out = self.to_server
        pending = self.pending
        for index, (code, message) in enumerate(items):
            if self.held is not None:                # a message ahead of these waits on the server
                self.held.extend(items[index:])
                return
            if code == RAW:                          # CopyData, streamed
                out.append(message)
                continue
            if code == _Q:
                entry = Pending(Wait.QUERY)
                out.append(self._on_query(message, entry))
                if not self.discarding:
                    pending.append(entry)
            elif code == _P:
                entry = Pending(Wait.PARSE)
                out.append(self._on_parse(message, entry))
                if not self.discarding:
                    pending.append(entry)
            elif code == _S:
                self.discarding = False
                pending.append(Pending(Wait.SYNC))
                out.append(message)
            elif code == _B and self._inspect:
                entry = Pending(Wait.BIND)
                out.append(self._on_bind(message, entry))
                if not self.discarding:
                    pending.append(entry)
            elif (code == _E and self._inspect) or (code == _D and self.masker is not None):
                if not _well_formed(code, message):
                    raise RemoteProtocolError(f"malformed message {chr(code)!r}")
                if not self.discarding:
                    if code == _E:
                        portal = _cstring_at(message, 5)[0]
                        if self.masker is not None and portal not in self.described:
                            # No Describe since its Bind: ask ourselves, so its rows have a plan.
                            self.described.add(portal)
                            pending.append(Pending(Wait.DESCRIBE, kind="P", name=portal, internal=True))
                            out.append(b"D" + (len(portal.encode("utf-8", "surrogateescape")) + 6).to_bytes(4, "big")
                                       + b"P" + portal.encode("utf-8", "surrogateescape") + b"\0")
                        entry = Pending(Wait.EXECUTE, name=portal, plan=_UNRESOLVED)
                        known = self.portals.get(portal)
                        if known is not None:
                            entry.counts = known[4]
                            if self.recording:
                                entry.record = self._new_record(known[0], "extended", known[1],
                                                                self._params(known[2], known[3]))
                            if known[1].limits is not None or self.cursors:
                                self._statement_limits(known[1], entry)
                    else:
                        kind, name = chr(message[5]), _cstring_at(message, 6)[0]
                        if kind == "P":
                            self.described.add(name)
                        entry = Pending(Wait.DESCRIBE, kind=kind, name=name)
                    pending.append(entry)
                out.append(message)
            elif code in _EXTENDED:
                if not _well_formed(code, message):
                    raise RemoteProtocolError(f"malformed message {chr(code)!r}")
                if code == _C and self._inspect and message[5:6] == b"S":
                    self._forget_statement(message)
                if not self.discarding:
                    pending.append(Pending(_EXTENDED[code]))
                out.append(message)
            elif code == _F:
                self._function_call(message)
            elif code in _PLAIN:                      # Flush, CopyDone, CopyFail, password
                out.append(message)
            elif code == _X:
                out.append(message)
                self._terminated()
                return
            else:
                raise ProtocolError(f"invalid frontend message type {chr(code)!r}")

    def _decide(self, judging, sql: str) -> Decision:
        """The decision for a statement: the session log's state first (fail closed), then the
        rules (no rules: allow), then strict masks."""
        if self.gate is not None:
            failure = self.gate()
            if failure:
                return Decision(Action.BLOCK, SESSION_LOG_RULE, f"the session log cannot be written ({failure})",
                                (SESSION_LOG_RULE,))
        decision = ALLOW if self.judge is None else judging()
        if self.strict is not None and decision.allowed:
            found = self.strict.violation(sql)
            if found is not None:
                mask_id, column = found
                return Decision(Action.BLOCK, mask_id, f"{column} is masked (strict): it may only be "
                                "selected as it is, not used in an expression", (mask_id,))
        return decision

    @property
    def _version(self) -> int:
        return self.judge.version if self.judge is not None else 0

    # ------------------------------------------------------- nothing to judge, mask or record --
    # A listener with no rule files and no session log only relays: no expectations to keep,
    # just how many answers the server still owes (a vanishing client's query is cancelled).

    def _from_client_plain(self, items: list[tuple[int, bytes]]) -> None:
        out = self.to_server
        for code, message in items:
            if code == RAW:
                out.append(message)
            elif code in _SYNC_POINTS:
                self._outstanding += 1
                out.append(message)
            elif code in _PLAIN_FORWARD:
                if code in _CHECKED and not _well_formed(code, message):
                    raise RemoteProtocolError(f"malformed message {chr(code)!r}")
                out.append(message)
            elif code == _X:
                out.append(message)
                self._terminated()
                return
            else:
                raise ProtocolError(f"invalid frontend message type {chr(code)!r}")

    def _from_server_plain(self, items: list[tuple[int, bytes]]) -> None:
        out = self.to_client
        for code, message in items:
            if code == _READY:
                self._ready_status(message)
                if self._outstanding:
                    self._outstanding -= 1
                out.append(message)
                if self.phase is Phase.AUTH:
                    self._became_ready()
            elif code == _ERROR:
                self._note_fatal(message)
                out.append(message)
            elif code == _KEYDATA:
                self._key_data(message)
                out.append(message)
            else:
                out.append(message)

    # --------------------------------------------------- shared by the plain and inspecting paths --

    def _terminated(self) -> None:
        self.close_reason = "client terminated"
        self.phase = Phase.CLOSED

    def _ready_status(self, message: bytes) -> None:
        if len(message) != 6 or message[5] not in b"ITE":
            raise RemoteProtocolError(f"ReadyForQuery: bad body {message[5:]!r}")
        self.transaction_status = chr(message[5])

    def _became_ready(self) -> None:
        """The first ReadyForQuery: authentication is over."""
        self.phase = Phase.READY
        self.events.append({"event": "ready", "backend_pid": self.backend_key[0] if self.backend_key else None})

    def _key_data(self, message: bytes) -> None:
        body = message[5:]
        self.backend_key = (int.from_bytes(body[:4], "big"), bytes(body[4:]))

    def _note_fatal(self, message: bytes) -> None:
        if b"VFATAL\0" in message or b"VPANIC\0" in message:
            self.server_said_fatal = True

    def _on_query(self, message: bytes, entry: Pending) -> bytes:
        if not self._inspect:
            return message
        if message.find(b"\0", 5) == len(message) - 1:      # the common, well-formed case
            sql = message[5:-1].decode("utf-8", "surrogateescape")
        else:
            sql = Query.decode(message[5:]).sql
        decision = self._decide(lambda: self.judge.query(sql), sql)
        if self.recording:
            entry.record = self._new_record(sql, "simple", decision)
        if decision.limits is not None or self.cursors:
            self._statement_limits(decision, entry)
        return self._enforce(decision, entry, sql, "simple", message,
                             lambda: Query(_unparseable(decision.rule_id)).encode())

    def _on_parse(self, message: bytes, entry: Pending) -> bytes:
        if not self._inspect:
            return message
        name, sql, types = _parse_fields(message)
        decision = self._decide(lambda: self.judge.parse(sql, name), sql)
        self.statements[name] = (sql, self._version, decision, types)
        if self.recording and not decision.allowed:
            entry.record = self._new_record(sql, "extended", decision)
        return self._enforce(decision, entry, sql, "extended", message,
                             lambda: Parse(name, _unparseable(decision.rule_id)).encode())

    def _on_bind(self, message: bytes, entry: Pending) -> bytes:
        """Remember what a portal runs (for its record); a statement parsed under older rules
        is judged again under the new ones."""
        portal, end = _cstring_at(message, 5)
        name, _ = _cstring_at(message, end)
        self.described.discard(portal)
        known = self.statements.get(name)
        if known is None:
            self.portals.pop(portal, None)
            return message
        sql, version, decision, types = known
        self.portals[portal] = (sql, decision, message, types, [0, 0])
        if self.judge is None or version == self.judge.version:
            return message
        decision = self._decide(lambda: self.judge.parse(sql, name), sql)
        self.statements[name] = (sql, self.judge.version, decision, types)
        self.portals[portal] = (sql, decision, message, types, [0, 0])
        if self.recording and not decision.allowed:
            entry.record = self._new_record(sql, "extended", decision)

        def substitute() -> bytes:
            bind = Bind.decode(message[5:])
            # A statement name that cannot exist: the server fails the Bind (26000), we say why.
            return Bind(bind.portal, "wireproxy blocked " + name, bind.param_formats, bind.params,
                        bind.result_formats).encode()
        return self._enforce(decision, entry, sql, "extended", message, substitute)

    def _forget_statement(self, message: bytes) -> None:
        name, _ = _cstring_at(message, 6)
        self.statements.pop(name, None)
        if self.judge is not None:
            self.judge.close(name)

    # --------------------------------------------------------------------------- recording --

    def _new_record(self, sql: str, protocol: str, decision, params=None) -> dict:
        record = {"sql": sql, "protocol": protocol, "decision": decision.action.name.lower(),
                  "t0": self.clock()}
        if decision.matched:
            record["rules"] = list(decision.matched)
        if params is not None:
            record["params"] = params
        return record

    def _params(self, bind_message: bytes, types: bytes = b"") -> list:
        bind = Bind.decode(bind_message[5:])
        types = [int.from_bytes(types[i:i + 4], "big") for i in range(0, len(types), 4)]
        formats = bind.param_formats
        shown = []
        for i, value in enumerate(bind.params):
            fmt = formats[i] if len(formats) > 1 else (formats[0] if formats else 0)
            if value is None:
                shown.append(None)
                continue
            text = value.decode("utf-8", "replace") if fmt == 0 else _binary_param(
                value, types[i] if i < len(types) else 0)
            shown.append(self.mask_param(text) if self.mask_param and text[:1] != "<" else text)
        return shown

    def _finish(self, record: dict) -> None:
        record["duration_ms"] = round((self.clock() - record.pop("t0")) * 1000, 3)
        if "result_rows" in record and record.get("rows", 0) > len(record["result_rows"]):
            record["result_rows_omitted"] = record["rows"] - len(record["result_rows"])
        record["event"] = "statement"
        self.events.append(record)

    def collect_results(self, max_bytes: int) -> None:
        """Put result rows (as the client gets them: masked) into the statement records, up to
        `max_bytes` for the session; rows are then framed one by one until the budget is spent."""
        self.result_budget = max_bytes
        self._server_passthrough = frozenset({_COPY_DATA})
        self.server.passthrough = self._server_passthrough

    def _record_row(self, record: dict, message: bytes) -> None:
        values = [None if v is None else v.decode("utf-8", "replace") if v.isascii() or _utf8(v)
                  else "\\x" + v.hex() for v in DataRow(message[5:]).values]
        record.setdefault("result_rows", []).append(values)
        self.result_budget = max(0, self.result_budget - len(message))
        if not self.result_budget and self.masker is None:
            self._server_passthrough = _SERVER_PASSTHROUGH        # rows go back to raw runs
            if not self._limited:
                self.server.passthrough = _SERVER_PASSTHROUGH

    def _note_completion(self, record: dict, message: bytes) -> None:
        if message[0] != _COMPLETE:
            return
        tag = message[5:-1].decode("utf-8", "replace")
        record["tag"] = f"{record['tag']}; {tag}" if "tag" in record else tag
        command, _, count = tag.rpartition(" ")
        if command.split(" ", 1)[0] in _ROW_COMMANDS and count.isascii() and count.isdigit():
            record["rows"] = record.get("rows", 0) + int(count)

    def _note_error(self, record: dict, message: bytes) -> None:
        try:
            error = ErrorResponse.decode(message[5:])
        except ProtocolError:
            return
        record["error"] = {"code": error.sqlstate, "message": error.message}

    def _function_call(self, message: bytes) -> None:
        """A FunctionCall names its function by OID: resolve it once, in band, then judge it."""
        if self.judge is None:
            if not self.discarding:
                self.pending.append(Pending(Wait.FUNCTION))
            self.to_server.append(message)
            return
        call = FunctionCall.decode(message[5:])
        if call.function_oid in self.function_names or self.transaction_status == "E":
            self._judged_function_call(call, message, self.function_names.get(call.function_oid))
            return
        self._lookup = (call, message)
        self._ask_server("function", _FUNCTION_NAME_SQL.format(oid=call.function_oid))

    def _ask_server(self, kind: str, sql: str) -> None:
        """Send our own read-only query; its answer comes to us, and the client's input waits."""
        self._hold()
        self._lookup_rows = []
        self.server.passthrough = frozenset()                    # we need to read its DataRows
        self.pending.append(Pending(Wait.LOOKUP, kind=kind))
        self.to_server.append(Query(sql).encode())

    def _judged_function_call(self, call: FunctionCall, message: bytes, name: str | None) -> None:
        entry = Pending(Wait.FUNCTION)
        decision = self.judge.function(name)
        label = f"<function call {name or 'oid ' + str(call.function_oid)}>"
        forwarded = self._enforce(decision, entry, label, "fastpath", message,
                                  lambda: FunctionCall(0).encode())   # OID 0 never exists
        if not self.discarding:
            self.pending.append(entry)
        self.to_server.append(forwarded)

    def _hold(self) -> None:
        """Keep the client's next messages back (in order) until every hold is released."""
        self._holds += 1
        if self.held is None:
            self.held = []

    def _release(self) -> None:
        self._holds -= 1
        if self._holds == 0:
            held, self.held = self.held, None
            if held:
                self._from_client(held)

    def cancel_sent(self) -> None:
        """The pump delivered the cancel that `cancel_upstream` asked for: the client's next
        statement may go on (before, the cancel could have landed on it)."""
        self._release()

    def _lookup_answered(self, kind: str) -> None:
        rows, self._lookup_rows = self._lookup_rows, []
        if not self._limited:
            self.server.passthrough = self._server_passthrough
        if kind == "function":
            call, message = self._lookup
            self._lookup = None
            name = rows[0][0] if rows and len(rows[0]) == 1 and rows[0][0] is not None else None
            name = name.decode("utf-8", "surrogateescape") if name is not None else None
            self.function_names[call.function_oid] = name
            self._judged_function_call(call, message, name)
        else:
            for row in rows:
                if len(row) == 4 and None not in row:
                    oid, attnum, table, column = (v.decode("utf-8", "surrogateescape") for v in row)
                    self.columns[(int(oid), int(attnum))] = (table, column)
        self._release()

    def _enforce(self, decision, entry: Pending, sql: str, path: str, original: bytes, substitute) -> bytes:
        action = int(decision.action)
        if action == 0:                               # allow: the hot path
            return original
        self.events.append({"event": "decision", "action": decision.action.name.lower(),
                            "rule": decision.rule_id, "matched": list(decision.matched),
                            "statement": sql, "path": path})
        if action == 1:                               # audit: logged above, forwarded
            return original
        entry.blocked = decision
        return substitute()

    # ---------------------------------------------------------------------- server -> client --

    def _from_server(self, items: list[tuple[int, bytes]]) -> None:
        out = self.to_client
        pending = self.pending
        for code, message in items:
            if pending and pending[0].wait is _LOOKUP:
                self._lookup_reply(code, message)
                continue
            if code == RAW:
                out.append(message)
            elif code == _ROW:
                if self._limited and pending and pending[0].limits is not None and not self._within_limits(pending[0], message):
                    continue
                message = self._masked_row(message)
                if self.result_budget and pending and pending[0].record is not None:
                    self._record_row(pending[0].record, message)
                out.append(message)
            elif code == _READY:
                self._ready_status(message)
                while pending:
                    done = pending.popleft()
                    if done.record is not None:
                        self._finish(done.record)
                    if done.limits is not None:
                        self._unlimit()
                    if done.wait in _ENDS_AT_READY:
                        break
                self.query_plan = None
                out.append(message)
                if self.phase is Phase.AUTH:
                    self._became_ready()
                    self._resolve_masked_tables()
            elif code == _ERROR:
                if self._limited and pending and pending[0].cut:
                    message = self._cut_error(pending[0])
                out.append(self._server_error(message))
            elif code == _ROWDESC and self.masker is not None:
                self._row_description(message)
                if pending and pending[0].wait is Wait.DESCRIBE:
                    if pending.popleft().internal:
                        continue                      # the answer to our own Describe
                out.append(message)
            elif (code == _COPY_DATA and self._limited and pending and pending[0].limits is not None
                  and not self._within_limits(pending[0], message)):
                continue                              # COPY TO rows count against limits too
            elif code in _MASKED_MESSAGES and self.masker is not None:
                out.append(self._masked_message(code, message))
            elif code in _POPS:
                if self._limited and pending and pending[0].cut and code in (_COMPLETE, _SUSPENDED):
                    message = self._cut_error(pending[0])
                    out.append(self._server_error(message))
                    continue
                if pending:
                    head = pending[0]
                    if head.record is not None:
                        self._note_completion(head.record, message)
                    if head.wait in _POPS[code]:
                        pending.popleft()
                        if head.record is not None:
                            self._finish(head.record)
                        if head.internal:
                            if code == _NODATA:
                                self.portal_plans[head.name] = None
                            continue
                out.append(message)
            elif code == _PARAMSTATUS and self.judge is not None:
                self._parameter_status(message)
                out.append(message)
            elif code == _KEYDATA:
                self._key_data(message)
                out.append(message)
            else:
                out.append(message)

    def _parameter_status(self, message: bytes) -> None:
        """With standard_conforming_strings off, a backslash in '...' escapes on the server:
        the judge must read strings the way the server will."""
        status = ParameterStatus.decode(message[5:])
        if status.name == "standard_conforming_strings":
            self.judge.standard_conforming_strings = status.value == "on"

    def _lookup_reply(self, code: int, message: bytes) -> None:
        """The answer to our own catalog query: read, never forwarded."""
        if code == _ROW:
            self._lookup_rows.append(DataRow(message[5:]).values)
        elif code == _READY:
            self._lookup_answered(self.pending.popleft().kind)
        elif code not in (_ROWDESC, _COMPLETE, _ERROR, ord("N")):
            self.to_client.append(message)       # asynchronous messages (notifications) belong to the client

    # ---------------------------------------------------------------------- volume limits --

    def _statement_limits(self, decision, entry: Pending) -> None:
        """Attach the volume limits a statement runs under. A cursor's limits come from its
        query at DECLARE and hold across all its FETCHes, with one count."""
        if not decision.allowed:
            return
        limits, counts = decision.limits, None
        for st in decision.facts or ():
            if "cursor" in st.flags and limits is not None:
                self.cursors[st.name] = (limits, [0, 0])
            elif "fetch" in st.flags and st.name in self.cursors:
                limits, counts = self.cursors[st.name]
        if limits is not None:
            self._limit(entry, limits)
            if counts is not None:
                entry.counts = counts

    def _limit(self, entry: Pending, limits) -> None:
        entry.limits = limits
        self._limited += 1
        self.server.passthrough = frozenset()          # rows must be counted one by one

    def _unlimit(self) -> None:
        self._limited -= 1
        if not self._limited and not any(p.wait is Wait.LOOKUP for p in self.pending):
            self.server.passthrough = self._server_passthrough

    def _within_limits(self, entry: Pending, message: bytes) -> bool:
        """Count a row; False when it must not reach the client."""
        if entry.cut:
            return False
        limits = entry.limits
        if limits is _REFUSED:
            return True
        counts = entry.counts
        if counts is None:
            counts = entry.counts = [0, 0]
        counts[0] += 1
        counts[1] += len(message)
        if limits.max_session_bytes is not None:
            self.session_bytes += len(message)
        if limits.max_rows is not None and counts[0] > limits.max_rows:
            why = f"more than {limits.max_rows} rows"
        elif limits.max_bytes is not None and counts[1] > limits.max_bytes:
            why = f"more than {limits.max_bytes} bytes"
        elif limits.max_session_bytes is not None and self.session_bytes > limits.max_session_bytes:
            why = f"more than {limits.max_session_bytes} bytes in this session"
        else:
            return True
        rule = ",".join(limits.rule_ids)
        self.events.append({"event": "limit", "rule": rule, "why": why,
                            "action": limits.action.name.lower()})
        if limits.action < Action.APPROVE:              # audit: logged, rows go on
            entry.limits = None
            self._unlimit()
            return True
        entry.cut = ("54000", f"result cut by wireproxy rule {rule}: {why}" + (
            f": {limits.message}" if limits.message else ""))
        self._request_cancel()
        return False

    def _cut_error(self, entry: Pending) -> bytes:
        (sqlstate, text), entry.cut = entry.cut, None
        entry.limits = None
        self._unlimit()
        entry.plan = None
        return ErrorResponse.make(sqlstate, text).encode()

    def _refuse_rows(self, entry: Pending, reason: str) -> None:
        """A mask rule says `binary = "refuse"`: no row of this result reaches the client."""
        if entry.cut:
            return
        entry.cut = ("42501", f"blocked by wireproxy: {reason}")
        if entry.limits is None:
            entry.limits = _REFUSED
            self._limited += 1
        self._request_cancel()

    def _request_cancel(self) -> None:
        """Ask the pump to cancel the running query (the server need not finish a result we
        drop); hold the client's next statement until the cancel is out, so a cancel that
        arrives late cannot hit that statement instead."""
        if not self.cancel_upstream:
            self.cancel_upstream = True
            self._hold()

    # ---------------------------------------------------------------------------- masking --

    def _resolve_masked_tables(self) -> None:
        """Column rules need RowDescription's table OIDs and attribute numbers as names: ask once."""
        pattern = self.masker is not None and _catalog_pattern(self.masker.specs)
        if pattern:
            self._ask_server("catalog", _CATALOG_SQL.format(pattern=pattern))

    def _columns(self, fields) -> tuple[Column, ...]:
        known = self.columns
        out = []
        for f in fields:
            table, attname = known.get((f.table_oid, f.column), (None, None))
            out.append(Column(f.name, table, f.type_oid, f.format, attname))
        return tuple(out)

    def _row_description(self, message: bytes) -> None:
        fields = RowDescription.decode(message[5:]).fields
        head = self.pending[0] if self.pending else None
        if head is not None and head.wait is Wait.DESCRIBE:
            if head.kind == "P":
                self.portal_plans[head.name] = self.masker.plan(self._columns(fields))
            # Describe S: the statement's columns, formats not yet chosen; the portal's own
            # Describe (the client's or ours) gives the plan its rows use.
        else:
            self.query_plan = self.masker.plan(self._columns(fields))

    def _masked_row(self, message: bytes) -> bytes:
        if self.masker is None:
            return message
        head = self.pending[0] if self.pending else None
        if head is not None and head.wait is Wait.EXECUTE:
            if head.plan is _UNRESOLVED:
                head.plan = self.portal_plans.get(head.name)
            plan = head.plan
        else:
            plan = self.query_plan
        if plan is None:
            return message
        if plan.refuse_reason:
            if head is not None:
                self._refuse_rows(head, plan.refuse_reason)
            return b""
        try:
            body = plan.rewrite(message[5:])
        except ValueError as exc:          # a lying DataRow from the server
            raise RemoteProtocolError(f"DataRow: {exc}") from None
        return message if body is message[5:] else frame(b"D", body)

    def _masked_message(self, code: int, message: bytes) -> bytes:
        masker = self.masker
        if code == _COPY_DATA:
            line = message[5:].decode("utf-8", "surrogateescape")
            masked = masker.mask_text(line)
            return message if masked == line else frame(b"d", masked.encode("utf-8", "surrogateescape"))
        if code == _NOTIFY:
            note = NotificationResponse.decode(message[5:])
            payload = masker.mask_text(note.payload)
            return message if payload == note.payload else NotificationResponse(
                note.process_id, note.channel, payload).encode()
        cls = ErrorResponse if code == _ERROR else NoticeResponse
        parsed = cls.decode(message[5:])
        changed = False
        for key in ("M", "D", "W", "H", "q"):
            if key in parsed.fields:
                masked = masker.mask_message(parsed.fields[key])
                changed |= masked != parsed.fields[key]
                parsed.fields[key] = masked
        return parsed.encode() if changed else message

    def _server_error(self, message: bytes) -> bytes:
        if self.masker is not None:
            message = self._masked_message(_ERROR, message)
        self._note_fatal(message)
        pending = self.pending
        if not pending:
            return message
        head = pending[0]
        blocked = head.blocked
        if blocked is not None and not self.server_said_fatal:
            head.blocked = None                   # only the first error answers the substitute
            message = ErrorResponse.make("42501", blocked.client_message()).encode()
        if head.record is not None:
            self._note_error(head.record, message)
        if head.wait not in _ENDS_AT_READY:
            # Extended protocol: the server now skips to Sync; so do our expectations.
            while pending and pending[0].wait is not Wait.SYNC:
                done = pending.popleft()
                if done is head and done.record is not None:
                    self._finish(done.record)
            self.discarding = not pending
        return message

    # ------------------------------------------------------------------------------ errors --

    def _fatal(self, sqlstate: str, message: str, reason: str, **fields: str) -> None:
        extra = {"D": fields["detail"]} if "detail" in fields else {}
        self.to_client.append(ErrorResponse.make(sqlstate, message, "FATAL", **extra).encode())
        self.close_reason = reason
        self.phase = Phase.CLOSED


_NOTIFY = ord("A")
_MASKED_MESSAGES = frozenset({_COPY_DATA, _NOTIFY, ord("N")})
_SYNC_POINTS = frozenset({_Q, _S, _F})            # each is answered by one ReadyForQuery
_CHECKED = frozenset({_D, _C, _E})
_PLAIN_FORWARD = frozenset({_P, _B, _D, _E, _C, _H, _COPY_DONE, _COPY_FAIL, ord("p")})
_ROW_COMMANDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "FETCH", "MOVE"})
_EXTENDED = {_B: Wait.BIND, _D: Wait.DESCRIBE, _E: Wait.EXECUTE, _C: Wait.CLOSE}
_PLAIN = frozenset({_H, _COPY_DONE, _COPY_FAIL, ord("p")})
_POPS = {
    _PARSE_OK: (Wait.PARSE,), _BIND_OK: (Wait.BIND,), _CLOSE_OK: (Wait.CLOSE,),
    _ROWDESC: (Wait.DESCRIBE,), _NODATA: (Wait.DESCRIBE,),
    _COMPLETE: (Wait.EXECUTE,), _EMPTY: (Wait.EXECUTE,), _SUSPENDED: (Wait.EXECUTE,),
}
