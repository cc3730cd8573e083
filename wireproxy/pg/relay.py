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
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from protocols.postgres import (RAW, STARTUP, CancelRequest, ErrorResponse, Framer, GSSENCRequest,
                                Parse, ProtocolError, Query, SSLRequest, StartupMessage,
                                decode_startup)
from protocols.postgres.framing import DEFAULT_MAX_MESSAGE_SIZE

# Type codes as ints, the way the framer reports them.
_Q, _P, _B, _D, _E, _S, _H, _C, _F, _X = (ord(c) for c in "QPBDESHCFX")
_COPY_DATA, _COPY_DONE, _COPY_FAIL = ord("d"), ord("c"), ord("f")
_ROW, _READY, _ERROR, _COMPLETE, _EMPTY, _SUSPENDED = (ord(c) for c in "DZECIs")
_PARSE_OK, _BIND_OK, _CLOSE_OK = ord("1"), ord("2"), ord("3")
_ROWDESC, _NODATA, _PARAMDESC = ord("T"), ord("n"), ord("t")
_KEYDATA, _AUTH = ord("K"), ord("R")

SERVER_MAX_MESSAGE_SIZE = 1 << 30 | 1 << 20   # a value may be 1 GB; allow its framing too


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


_ENDS_AT_READY = (Wait.QUERY, Wait.FUNCTION, Wait.SYNC)


class Judge(Protocol):
    """The per-session face of the policy engine (wireproxy.policy)."""
    def query(self, sql: str) -> Any: ...
    def parse(self, sql: str) -> Any: ...


@dataclass(slots=True)
class Pending:
    wait: Wait
    blocked: Any = None          # the Decision that replaced this message, if any


def _unparseable(rule_id: str) -> str:
    """SQL the server rejects at parse time, naming the rule in the server's own log."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in rule_id)[:60]
    return f"wireproxy blocked this statement by rule {safe}"


class PgRelay:
    def __init__(self, *, upstream: str, judge_factory=None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, clock=time.monotonic):
        self.upstream = upstream
        self.phase = Phase.STARTUP
        self.client = Framer(max_message_size, passthrough={_COPY_DATA}, startup=True)
        self.server = Framer(SERVER_MAX_MESSAGE_SIZE, passthrough={_ROW, _COPY_DATA})
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
        self.judge_factory = judge_factory
        self.judge: Judge | None = None
        self.clock = clock

    # ------------------------------------------------------------------ what the pumps call --

    @property
    def wants_upstream(self) -> bool:
        """A StartupMessage arrived: the pump connects to the upstream and flushes to_server."""
        return self.phase is Phase.AUTH and self.startup is not None

    @property
    def busy(self) -> bool:
        """The server owes answers: a vanishing client should cancel the running query."""
        return bool(self.pending)

    def client_data(self, data: bytes) -> None:
        try:
            if self.phase is Phase.STARTUP:
                self._startup(data)
            elif self.phase is not Phase.CLOSED:
                self._from_client(self.client.feed(data))
        except ProtocolError as exc:
            self._fatal(exc.sqlstate, f"invalid client message: {exc}", "malformed client input")

    def server_data(self, data: bytes) -> None:
        if self.phase is Phase.CLOSED:
            return
        try:
            self._from_server(self.server.feed(data))
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
        if self.server.at_boundary:
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
        for code, message in items:
            if code == RAW:                          # CopyData, streamed
                out.append(message)
                continue
            if code == _Q:
                entry = Pending(Wait.QUERY)
                out.append(self._judged_query(message, entry))
                if not self.discarding:
                    pending.append(entry)
            elif code == _P:
                entry = Pending(Wait.PARSE)
                out.append(self._judged_parse(message, entry))
                if not self.discarding:
                    pending.append(entry)
            elif code == _S:
                self.discarding = False
                pending.append(Pending(Wait.SYNC))
                out.append(message)
            elif code in _EXTENDED:
                if not self.discarding:
                    pending.append(Pending(_EXTENDED[code]))
                out.append(message)
            elif code == _F:
                if not self.discarding:
                    pending.append(Pending(Wait.FUNCTION))
                out.append(message)
            elif code in _PLAIN:                      # Flush, CopyDone, CopyFail, password
                out.append(message)
            elif code == _X:
                out.append(message)
                self.close_reason = "client terminated"
                self.phase = Phase.CLOSED
                return
            else:
                raise ProtocolError(f"invalid frontend message type {chr(code)!r}")

    def _judged_query(self, message: bytes, entry: Pending) -> bytes:
        if self.judge is None:
            return message
        query = Query.decode(message[5:])
        decision = self.judge.query(query.sql)
        return self._enforce(decision, entry, query.sql, "simple", message,
                             lambda: Query(_unparseable(decision.rule_id)).encode())

    def _judged_parse(self, message: bytes, entry: Pending) -> bytes:
        if self.judge is None:
            return message
        parse = Parse.decode(message[5:])
        decision = self.judge.parse(parse.sql)
        return self._enforce(decision, entry, parse.sql, "extended", message,
                             lambda: Parse(parse.statement, _unparseable(decision.rule_id)).encode())

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
            if code == RAW:
                out.append(message)
            elif code == _READY:
                self.transaction_status = chr(message[5])
                while pending:
                    if pending.popleft().wait in _ENDS_AT_READY:
                        break
                if self.phase is Phase.AUTH:
                    self.phase = Phase.READY
                    self.events.append({"event": "ready", "backend_pid": self.backend_key[0] if self.backend_key else None})
                out.append(message)
            elif code == _ERROR:
                out.append(self._server_error(message))
            elif code in _POPS:
                if pending and pending[0].wait in _POPS[code]:
                    pending.popleft()
                out.append(message)
            elif code == _KEYDATA:
                body = message[5:]
                self.backend_key = (int.from_bytes(body[:4], "big"), bytes(body[4:]))
                out.append(message)
            else:
                out.append(message)

    def _server_error(self, message: bytes) -> bytes:
        pending = self.pending
        if not pending:
            return message
        head = pending[0]
        blocked = head.blocked
        if head.wait not in _ENDS_AT_READY:
            # Extended protocol: the server now skips to Sync; so do our expectations.
            while pending and pending[0].wait is not Wait.SYNC:
                pending.popleft()
            self.discarding = not pending
        if blocked is None:
            return message
        head.blocked = None                   # only the first error answers the substitute
        error = ErrorResponse.decode(message[5:])
        if error.severity in ("FATAL", "PANIC"):
            return message
        return ErrorResponse.make("42501", blocked.client_message).encode()

    # ------------------------------------------------------------------------------ errors --

    def _fatal(self, sqlstate: str, message: str, reason: str, **fields: str) -> None:
        extra = {"D": fields["detail"]} if "detail" in fields else {}
        self.to_client.append(ErrorResponse.make(sqlstate, message, "FATAL", **extra).encode())
        self.close_reason = reason
        self.phase = Phase.CLOSED


_EXTENDED = {_B: Wait.BIND, _D: Wait.DESCRIBE, _E: Wait.EXECUTE, _C: Wait.CLOSE}
_PLAIN = frozenset({_H, _COPY_DONE, _COPY_FAIL, ord("p")})
_POPS = {
    _PARSE_OK: (Wait.PARSE,), _BIND_OK: (Wait.BIND,), _CLOSE_OK: (Wait.CLOSE,),
    _ROWDESC: (Wait.DESCRIBE,), _NODATA: (Wait.DESCRIBE,),
    _COMPLETE: (Wait.EXECUTE,), _EMPTY: (Wait.EXECUTE,), _SUSPENDED: (Wait.EXECUTE,),
}
