"""The conversation's vocabulary, shared by the relay and every collaborator (the bottom module).

Type codes as the framer reports them (ints); the session phases; what a forwarded message waits
for from the server (`Wait`) and the one table of which server message answers which wait
(`ANSWERS`); `Pending`, the entry the conversation keeps per expected answer, with one slot per
collaborator; prepared statements and portals; and the typed events and actions the relay hands
to its pumps. Nothing here does anything: it only names things.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

# Frontend type codes.
QUERY, PARSE, BIND, DESCRIBE, EXECUTE, SYNC, FLUSH, CLOSE, FUNCTION_CALL, TERMINATE = (
    ord(c) for c in "QPBDESHCFX")
COPY_DATA, COPY_DONE, COPY_FAIL, PASSWORD = (ord(c) for c in "dcfp")
# Backend type codes.
DATA_ROW, READY, ERROR, NOTICE, COMPLETE, EMPTY_QUERY, SUSPENDED = (ord(c) for c in "DZENCIs")
PARSE_OK, BIND_OK, CLOSE_OK = ord("1"), ord("2"), ord("3")
ROW_DESCRIPTION, NO_DATA, PARAM_DESCRIPTION = ord("T"), ord("n"), ord("t")
KEY_DATA, AUTH, PARAM_STATUS, NOTIFICATION = ord("K"), ord("R"), ord("S"), ord("A")
COPY_IN, COPY_OUT, COPY_BOTH, FUNCTION_RESULT = ord("G"), ord("H"), ord("W"), ord("V")


class Phase(enum.Enum):
    STARTUP = "startup"      # waiting for the client's startup packet
    LOGIN = "login"          # the client proves to wireproxy who it is
    AUTH = "auth"            # startup forwarded; authentication passes through (or is ours)
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
    LOOKUP = 8       # the proxy's own query: answered to the proxy, never to the client
    COPY_END = 9     # the client's CopyDone or CopyFail: a marker, answered by nothing


# Waits that end at ReadyForQuery (everything up to it belongs to them), and the others' answers.
ENDS_AT_READY = frozenset({Wait.QUERY, Wait.FUNCTION, Wait.SYNC, Wait.LOOKUP})
ANSWERS: dict[int, Wait] = {
    PARSE_OK: Wait.PARSE, BIND_OK: Wait.BIND, CLOSE_OK: Wait.CLOSE,
    ROW_DESCRIPTION: Wait.DESCRIBE, NO_DATA: Wait.DESCRIBE,
    COMPLETE: Wait.EXECUTE, EMPTY_QUERY: Wait.EXECUTE, SUSPENDED: Wait.EXECUTE,
}
# Client messages the server answers with exactly one ReadyForQuery.
SYNC_POINTS = frozenset({QUERY, SYNC, FUNCTION_CALL})


@dataclass(slots=True)
class Pending:
    """One answer the server owes. The conversation sets `wait`, `internal` and `lookup`, the
    relay `quiet` and `held`; each collaborator owns its own slots and nobody else writes them."""
    wait: Wait
    internal: bool = False       # conversation: our own message; its answer is read, not forwarded
    lookup: Any = None           # conversation: the in-band request a LOOKUP entry answers
    quiet: bool = False          # relay: not even an error of its answer reaches the client
    held: bool = False           # relay: the client's input waits until this answer is in
    blocked: tuple[str, str] | None = None   # enforcement: (sqlstate, text) the client gets
                                             # for the error of a substituted message
    portal: str | None = None    # masking: the portal (Execute, Describe P) or statement (Describe S)
    kind: str = ""               # masking: a Describe's "S" or "P"
    plan: Any = None             # masking: the row plan of an Execute, once resolved
    limits: Any = None           # limits: the volume limits on this statement's rows
    counts: list | None = None   # limits: [rows, bytes] so far; shared by a portal's Executes
    cut: tuple[str, str] | None = None   # limits: (sqlstate, why) its rows stopped
    record: Any = None           # recording: the StatementRecord this answer completes


@dataclass(slots=True)
class Statement:
    """A prepared statement as the proxy knows it: its SQL and the decision it was judged to."""
    sql: str
    rules_version: int
    decision: Any
    param_types: bytes = b""     # Parse's type OIDs, packed; decoded only for records


@dataclass(slots=True)
class Portal:
    statement: Statement
    bind: bytes                  # the Bind message, for the parameters in records
    counts: list = field(default_factory=lambda: [0, 0])   # rows and bytes, across its Executes


# ------------------------------------------------------------------------------ events ------
# What happened, for logs and session records. Events compare equal to their dict form too, so
# a test script may write them as data.

@dataclass(slots=True)
class Event:
    NAME: ClassVar[str] = ""

    def to_dict(self) -> dict:
        out = {"event": self.NAME}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value
        return out

    def __eq__(self, other):
        if isinstance(other, dict):
            return self.to_dict() == other
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __getitem__(self, key: str):
        return self.to_dict()[key]


@dataclass(slots=True, eq=False)
class Started(Event):
    NAME: ClassVar[str] = "startup"
    user: str
    database: str
    application_name: str
    auth: str | None = None          # scram | jwt when wireproxy authenticated the client


@dataclass(slots=True, eq=False)
class Ready(Event):
    NAME: ClassVar[str] = "ready"
    backend_pid: int | None


@dataclass(slots=True, eq=False)
class Decided(Event):
    """A statement judged to anything but allow."""
    NAME: ClassVar[str] = "decision"
    action: str
    rule: str | None
    matched: list
    statement: str
    path: str


@dataclass(slots=True, eq=False)
class LimitHit(Event):
    NAME: ClassVar[str] = "limit"
    rule: str
    why: str
    action: str


@dataclass(slots=True, eq=False)
class Recorded(Event):
    """A statement's session-log record, complete."""
    NAME: ClassVar[str] = "statement"
    record: dict

    def to_dict(self) -> dict:
        return {"event": self.NAME, **self.record}


# ----------------------------------------------------------------------------- actions ------
# What the pumps must do beyond sending the outboxes.

@dataclass(frozen=True, slots=True)
class CancelQuery:
    """Cancel the running query upstream (a result was cut); call `relay.cancel_sent()` once
    the cancel is delivered: the client's next statement waits for it."""
    why: str


@dataclass(frozen=True, slots=True)
class EndSession:
    """The session is over (`reason`): send what the outboxes hold, then close both sides."""
    reason: str


@dataclass(frozen=True, slots=True)
class AwaitApproval:
    """A statement is held for a human: submit it, then `relay.approval_pending(id)` and, when
    decided, `relay.approval_decided(outcome)`."""
    decision: Any
    statement: str
