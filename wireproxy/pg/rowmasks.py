"""Masking in the Postgres session: which row plan each result's rows use, and rewriting them.

A plan comes from a RowDescription (wireproxy.masking makes it from the columns). In the simple
protocol the RowDescription precedes the rows it describes. In the extended protocol a portal's
plan comes from the answer to a Describe P sent after its Bind — the client's, or our own when it
sent none (`describe_first`); answers arrive in order, so the latest one is the binding an
Execute's rows belong to, even when a pipeline rebinds the portal. Table-qualified mask rules
need RowDescription's table OIDs as names: one catalog query per session resolves them
(`catalog_sql`, answered through the relay's in-band lookups).

Also masked: CopyData (COPY TO), NotificationResponse payloads, and the text fields of
ErrorResponse and NoticeResponse.
"""

from __future__ import annotations

from protocols.postgres import (ErrorResponse, NoticeResponse, NotificationResponse, RemoteProtocolError,
                                RowDescription)
from protocols.postgres.wire import frame

from ..masking import Column
from .protocol import COPY_DATA, ERROR, NOTIFICATION, Pending, Wait

# Columns of user tables whose names a table-qualified mask rule could mean: (table OID, attnum)
# -> schema.table and the column's own name. Read-only; the pattern is the rules' own globs.
_CATALOG_SQL = ("SELECT c.oid, a.attnum, n.nspname || '.' || c.relname, a.attname "
                "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND a.attname ~* {pattern}")

_RAW = object()              # an Execute's rows need no masking
_UNKNOWN = object()          # an Execute whose rows have no known description: fail closed
REFUSED = object()           # a row of a result that may not be sent at all


class RowMasks:
    __slots__ = ("masker", "query_plan", "portal_plans", "described", "columns")

    def __init__(self, masker):
        self.masker = masker                       # wireproxy.masking.UserMasker
        self.query_plan = None                     # the simple-protocol result's plan
        self.portal_plans: dict[str, object] = {}  # portal -> plan, from its latest Describe P
        self.described: set[str] = set()           # portals described since their Bind
        self.columns: dict[tuple[int, int], tuple[str, str]] = {}   # (table oid, attnum) -> names

    # ---------------------------------------------------------------- the table catalog --

    def catalog_sql(self) -> str | None:
        """The one query that resolves table-qualified column rules; None when none needs it."""
        pattern = _catalog_pattern(self.masker.specs)
        return _CATALOG_SQL.format(pattern=pattern) if pattern else None

    def learn_columns(self, rows: list[tuple] | None) -> None:
        for row in rows or ():
            if len(row) == 4 and None not in row:
                oid, attnum, table, column = (v.decode("utf-8", "surrogateescape") for v in row)
                self.columns[(int(oid), int(attnum))] = (table, column)

    # ------------------------------------------------------------ plans, from the client --

    def bound(self, portal: str) -> None:
        self.described.discard(portal)

    def described_by_client(self, portal: str) -> None:
        self.described.add(portal)

    def describe_first(self, portal: str) -> bool:
        """An Execute of a portal not described since its Bind: True when we must send our own
        Describe first, so its rows have a plan."""
        if portal in self.described:
            return False
        self.described.add(portal)
        return True

    # ------------------------------------------------------------ plans, from the server --

    def row_description(self, head: Pending | None, message: bytes) -> None:
        fields = RowDescription.decode(message[5:]).fields
        if head is not None and head.wait is Wait.DESCRIBE:
            if head.kind == "P":
                self.portal_plans[head.portal] = self.masker.plan(self._columns(fields))
            # Describe S: the statement's columns, formats not chosen yet; the portal's own
            # Describe (the client's or ours) gives the plan its rows use.
        else:
            self.query_plan = self.masker.plan(self._columns(fields))

    def no_data(self, entry: Pending) -> None:
        if entry.kind == "P":
            self.portal_plans[entry.portal] = None

    def result_done(self) -> None:
        """ReadyForQuery: the simple-protocol result is over."""
        self.query_plan = None

    def _columns(self, fields) -> tuple[Column, ...]:
        known = self.columns
        out = []
        for f in fields:
            table, attname = known.get((f.table_oid, f.column), (None, None))
            out.append(Column(f.name, table, f.type_oid, f.format, attname))
        return tuple(out)

    # -------------------------------------------------------------------------- rewriting --

    def row(self, head: Pending | None, message: bytes):
        """A DataRow as the client may see it; REFUSED when its result may not be sent at all
        (its plan's refuse_reason says why)."""
        if head is not None and head.wait is Wait.EXECUTE:
            plan = head.plan
            if plan is None:                  # its first row: the latest Describe P's plan
                plan = self.portal_plans.get(head.portal, _UNKNOWN)
                head.plan = plan = _RAW if plan is None else plan
            if plan is _RAW:
                return message
            if plan is _UNKNOWN:
                return REFUSED
        else:
            plan = self.query_plan
            if plan is None:
                return message
        if plan.refuse_reason:
            return REFUSED
        body = message[5:]
        try:
            masked = plan.rewrite(body)
        except ValueError as exc:          # a lying DataRow from the server
            raise RemoteProtocolError(f"DataRow: {exc}") from None
        return message if masked is body else frame(b"D", masked)

    def refuse_reason(self, head: Pending | None) -> str:
        plan = head.plan if head is not None and head.wait is Wait.EXECUTE else self.query_plan
        if plan is _UNKNOWN:
            return "the rows' columns are not known, so they cannot be masked"
        return plan.refuse_reason

    def message(self, code: int, message: bytes) -> bytes:
        """CopyData, a notification or the fields of an error or notice, masked."""
        masker = self.masker
        if code == COPY_DATA:
            line = message[5:].decode("utf-8", "surrogateescape")
            masked = masker.mask_text(line)
            return message if masked == line else frame(b"d", masked.encode("utf-8", "surrogateescape"))
        if code == NOTIFICATION:
            note = NotificationResponse.decode(message[5:])
            payload = masker.mask_text(note.payload)
            return message if payload == note.payload else NotificationResponse(
                note.process_id, note.channel, payload).encode()
        parsed = (ErrorResponse if code == ERROR else NoticeResponse).decode(message[5:])
        changed = False
        for key in ("M", "D", "W", "H", "q"):
            if key in parsed.fields:
                masked = masker.mask_message(parsed.fields[key])
                changed |= masked != parsed.fields[key]
                parsed.fields[key] = masked
        return parsed.encode() if changed else message

    def mask_text(self, text: str) -> str:
        return self.masker.mask_text(text)


def _catalog_pattern(specs) -> str | None:
    """A PostgreSQL regex literal for the column parts of the mask globs. Name-only globs are
    resolved too: `SELECT email AS e` keeps its origin in RowDescription, and the masker matches
    the column's own name as well as the alias."""
    parts = {_glob_to_regex(glob.rsplit(".", 1)[-1]) for spec in specs for glob in spec.columns}
    if not parts:
        return None
    regex = "^(" + "|".join(sorted(parts)) + ")$"
    return "'" + regex.replace("'", "''") + "'"


def _glob_to_regex(glob: str) -> str:
    out = []
    for ch in glob:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch in "[]" or ch.isalnum() or ch == "_":
            out.append(ch)
        else:
            out.append("\\" + ch)
    return "".join(out)
