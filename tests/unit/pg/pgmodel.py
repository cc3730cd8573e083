"""A model PostgreSQL backend for the relay's stateful test: frontend bytes in, backend bytes out.

It answers a small vocabulary of statements the way postgres.c does, including the places where
the server does not answer one response per message: errors in the extended protocol skip to
Sync, messages in a failed transaction get 25P02, COPY FROM STDIN reads the client's messages
itself (ignoring Sync and Flush, failing on anything else), a Query string fails as a whole when
any part of it does not parse, DISCARD ALL forgets prepared statements and portals.

`reference=True` makes it the server a client should see through wireproxy without a proxy:
blocked statements fail at parse time with wireproxy's 42501, masked values come back masked,
and a cut result ends with 54000 after its first rows (see `cut`). The test feeds the same client
stream to a reference model directly and to a plain model behind the relay, and compares.

A result of `BIG_ROWS` rows pauses after its first `PAUSE_AFTER` rows (`paused`), so a test can
decide whether a cancel lands while it runs (`resume(cancelled)`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from protocols.postgres import (BindComplete, CloseComplete, CommandComplete, CopyData, CopyDone,
                                CopyInResponse, CopyOutResponse, DataRow, EmptyQueryResponse, ErrorResponse,
                                Field, Framer, FunctionCallResponse, NoData, NoticeResponse,
                                NotificationResponse, ParameterDescription, ParseComplete, PortalSuspended,
                                ReadyForQuery, RowDescription, decode_frontend)

EMAILS = [b"alice@example.com", b"bob@example.org"]
BIG_ROWS, PAUSE_AFTER = 5, 3
FUNCTION_OID = 1598
LOOKUP_PREFIXES = ("SELECT n.nspname || '.' || p.proname", "SELECT c.oid, a.attnum")

# statement -> (kind, columns, rows)
SELECTS = {
    "SELECT n FROM small": ("n", [b"1", b"2"]),
    "SELECT email FROM people": ("email", EMAILS),
    "SELECT n FROM big": ("n", [str(i).encode() for i in range(1, BIG_ROWS + 1)]),
}
COMMANDS = {"BEGIN": "BEGIN", "COMMIT": "COMMIT", "ROLLBACK": "ROLLBACK", "DISCARD ALL": "DISCARD ALL",
            "INSERT INTO t VALUES (1)": "INSERT 0 1", "DROP TABLE t": "DROP TABLE"}
OTHERS = {"SELECT 1/0", "SELECT notice", "SELECT notify", "COPY t FROM STDIN", "COPY t TO STDOUT", ""}


class _Failed(Exception):
    def __init__(self, sqlstate: str, message: str):
        self.sqlstate, self.message = sqlstate, message


@dataclass
class Portal:
    sql: str
    position: int = 0


@dataclass
class ModelServer:
    reference: bool = False
    masker: object = None             # reference: the UserMasker whose output the client expects
    block_text: str = ""              # reference: the 42501 text of a blocked statement
    cut_text: str = ""                # reference: the 54000 text of a cut result
    cut_after: int = 2                # reference: rows before a cut
    cancels: deque = field(default_factory=deque)   # per BIG result: does our cancel land?
    status: str = "I"
    implicit: bool = False            # an extended batch's implicit transaction is open
    ignore_till_sync: bool = False
    copy_in: str | None = None        # "simple" / "extended" while reading COPY data
    copied: int = 0
    statements: dict = field(default_factory=dict)
    portals: dict = field(default_factory=dict)
    seen_sql: list = field(default_factory=list)
    paused: tuple | None = None       # (portal-or-None, rows left, max_rows, simple rest)
    cut_budget: int | None = None     # reference: rows the client may still see of this result
    unseen: bool = False              # reference: after a cut, the rest of the string is unseen
    cancel_due: bool | None = None    # reference: does our cancel land on the next big result?
    out: list = field(default_factory=list)
    _queue: deque = field(default_factory=deque)
    _framer: Framer = field(default_factory=lambda: Framer(1 << 30))

    # ---------------------------------------------------------------- the byte interface --

    def feed(self, data: bytes) -> None:
        self._queue.extend(self._framer.feed(data))

    def run(self) -> bytes:
        while self._queue and self.paused is None:
            code, message = self._queue.popleft()
            self._message(chr(code), decode_frontend(code, message[5:]))
        data = b"".join(m.encode() for m in self.out)
        self.out.clear()
        return data

    def _send(self, *messages) -> None:
        if not self.unseen:
            self.out.extend(messages)

    # ------------------------------------------------------------------- the main loop --

    def _message(self, code: str, msg) -> None:
        if self.copy_in is not None:
            return self._copy_message(code, msg)
        if code == "S":
            self.ignore_till_sync = False
            self._end_implicit()
            return self._send(ReadyForQuery(self.status))
        if self.ignore_till_sync or code in "dcf":
            return
        extended = code in "PBDECH"
        try:
            handler = getattr(self, "_" + {"Q": "query", "P": "parse", "B": "bind", "D": "describe",
                                          "E": "execute", "C": "close", "F": "function", "H": "flush",
                                          "X": "flush"}[code])
            handler(msg)
        except _Failed as failure:
            self._fail(failure, extended)        # unseen after a cut: the client has its error
            if not extended:
                self._end_query()

    def _fail(self, failure: _Failed, extended: bool) -> None:
        self._send(ErrorResponse.make(failure.sqlstate, failure.message))
        if self.status == "T":
            self.status = "E"
        if extended:
            self.ignore_till_sync = True
            self.implicit = False             # the implicit transaction is rolled back

    def _end_implicit(self) -> None:
        """Sync, or a simple Query's end: outside a transaction block the transaction ends, and
        with it every portal."""
        self.implicit = False
        if self.status == "I":
            self.portals.clear()

    def _check_sql(self, sql: str) -> None:
        """What raw parsing finds: unknown text is a syntax error (wireproxy's substitutes)."""
        self.seen_sql.append(sql)
        for part in _split(sql):
            if self.reference and "DROP" in part:
                raise _Failed("42501", self.block_text)
            if part not in SELECTS and part not in COMMANDS and part not in OTHERS:
                if not any(part.startswith(p) for p in LOOKUP_PREFIXES):
                    raise _Failed("42601", f'syntax error at or near "{part.split()[0] if part else ""}"')

    def _aborted_check(self, sql: str) -> None:
        if self.status == "E" and sql not in ("COMMIT", "ROLLBACK"):
            raise _Failed("25P02", "current transaction is aborted, commands ignored until end of "
                                   "transaction block")

    # ------------------------------------------------------------------- simple query --

    def _query(self, msg) -> None:
        self._check_sql(msg.sql)
        parts = _split(msg.sql)
        if self.reference and "SELECT n FROM big" in parts:
            self.cut_budget = self.cut_after
        if not parts:
            self._send(EmptyQueryResponse())
        self._run_parts(parts)

    def _run_parts(self, parts: list[str]) -> None:
        for i, part in enumerate(parts):
            self._aborted_check(part)
            if self._statement(part, None, 0, simple_rest=parts[i + 1:]):
                return                          # paused, or in copy: the rest comes later
        self._end_query()

    def _end_query(self) -> None:
        self.unseen, self.cut_budget, self.cancel_due = False, None, None
        self._end_implicit()
        self._send(ReadyForQuery(self.status))

    # ------------------------------------------------------------------- extended --------

    def _parse(self, msg) -> None:
        self._check_sql(msg.sql)
        self._aborted_check(msg.sql)
        self.statements[msg.statement] = msg.sql
        self._send(ParseComplete())

    def _bind(self, msg) -> None:
        if msg.statement not in self.statements:
            raise _Failed("26000", f'prepared statement "{msg.statement}" does not exist')
        sql = self.statements[msg.statement]
        self._aborted_check(sql)
        self.portals[msg.portal] = Portal(sql)
        self._send(BindComplete())

    def _describe(self, msg) -> None:
        if msg.kind == "S":
            if msg.name not in self.statements:
                raise _Failed("26000", f'prepared statement "{msg.name}" does not exist')
            self._send(ParameterDescription(()))
            sql = self.statements[msg.name]
        else:
            if msg.name not in self.portals:
                raise _Failed("34000", f'portal "{msg.name}" does not exist')
            sql = self.portals[msg.name].sql
        self._send(_row_description(sql) or NoData())

    def _execute(self, msg) -> None:
        portal = self.portals.get(msg.portal)
        if portal is None:
            raise _Failed("34000", f'portal "{msg.portal}" does not exist')
        self._aborted_check(portal.sql)
        self.implicit = True
        self._statement(portal.sql, portal, msg.max_rows)

    def _close(self, msg) -> None:
        (self.statements if msg.kind == "S" else self.portals).pop(msg.name, None)
        self._send(CloseComplete())

    def _flush(self, msg) -> None:
        pass

    def _function(self, msg) -> None:
        if self.status == "E":
            raise _Failed("25P02", "current transaction is aborted, commands ignored until end of "
                                   "transaction block")
        if msg.function_oid != FUNCTION_OID:
            raise _Failed("42883", f"function with OID {msg.function_oid} does not exist")
        self._send(FunctionCallResponse(b"0.5"), ReadyForQuery(self.status))

    # ------------------------------------------------------------------- statements --

    def _statement(self, sql: str, portal: Portal | None, max_rows: int, simple_rest=()) -> bool:
        """Run one statement; True when the rest of its Query must wait (copy-in, a pause)."""
        if sql in SELECTS:
            if portal is None:
                self._send(_row_description(sql))
            return self._rows(sql, portal, max_rows, list(simple_rest))
        if sql in COMMANDS:
            self._command(sql, portal is None)
        elif sql == "SELECT 1/0":
            raise _Failed("22012", "division by zero")
        elif sql in ("SELECT notice", "SELECT notify"):
            if portal is None:
                self._send(_row_description(sql))
            if sql == "SELECT notice":
                self._send(NoticeResponse.make("01000", self._masked_text("hello alice@example.com")))
            row = DataRow.from_values([b"1"])
            if self.reference:
                if self._reference_row(row, portal, False):
                    return True
            else:
                self._send(row)
            self._send(CommandComplete("SELECT 1"))
            if sql == "SELECT notify":            # for the session: seen even after a cut
                self.out.append(NotificationResponse(7, "chan", self._masked_text("to bob@example.org")))
        elif sql == "COPY t TO STDOUT":
            rows = [CopyData(b"%d\n" % i) for i in range(3)]
            budget = self.cut_budget if self.reference and not self.unseen else None
            if budget is not None and budget < len(rows):    # the client sees the lines in the
                self._send(CopyOutResponse(0, (0,)), *rows[:budget], CopyDone())   # limit, then 54000
                return self._cut(portal, False)
            if budget is not None:
                self.cut_budget -= len(rows)
            self._send(CopyOutResponse(0, (0,)), *rows, CopyDone(), CommandComplete("COPY 3"))
        elif sql == "COPY t FROM STDIN":
            self.copy_in, self.copied = ("extended" if portal is not None else "simple"), 0
            self._send(CopyInResponse(0, (0,)))
            return True
        elif sql == "":
            self._send(EmptyQueryResponse())
        elif any(sql.startswith(p) for p in LOOKUP_PREFIXES):
            self._send(RowDescription((Field("name"),)))
            if sql.startswith(LOOKUP_PREFIXES[0]):
                self._send(DataRow.from_values([b"pg_catalog.random"]), CommandComplete("SELECT 1"))
            else:
                self._send(CommandComplete("SELECT 0"))
        return False

    def _command(self, sql: str, simple: bool) -> None:
        if sql == "BEGIN":
            self.status = "T"
        elif sql in ("COMMIT", "ROLLBACK"):
            tag = "ROLLBACK" if self.status == "E" else sql
            self.status = "I"
            self.portals.clear()
            return self._send(CommandComplete(tag))
        elif sql == "DISCARD ALL":
            if self.status != "I" or self.implicit:
                raise _Failed("25001", "DISCARD ALL cannot run inside a transaction block")
            self.statements.clear()
            self.portals.clear()
        self._send(CommandComplete(COMMANDS[sql]))

    def _rows(self, sql: str, portal: Portal | None, max_rows: int, simple_rest: list) -> bool:
        values = SELECTS[sql][1]
        start = portal.position if portal is not None else 0
        big = sql == "SELECT n FROM big"
        end = len(values) if not max_rows else min(len(values), start + max_rows)
        if self.reference:
            return self._reference_rows(sql, portal, start, end, max_rows, simple_rest)
        if big and start < PAUSE_AFTER < end:
            self._send(*(self._row(sql, v) for v in values[start:PAUSE_AFTER]))
            self.paused = (portal, end, max_rows, simple_rest, sql)
            return True
        return self._finish_rows(sql, portal, start, end, max_rows, simple_rest)

    def _finish_rows(self, sql, portal, start, end, max_rows, simple_rest) -> bool:
        values = SELECTS[sql][1]
        self._send(*(self._row(sql, v) for v in values[start:end]))
        if portal is not None:
            portal.position = end
            if max_rows and end < len(values):
                self._send(PortalSuspended())
                return False
        self._send(CommandComplete(f"SELECT {end if portal is None else end - start}"))
        return False

    def resume(self, cancelled: bool) -> None:
        """The paused result goes on, or our cancel landed while it ran."""
        portal, end, max_rows, simple_rest, sql = self.paused
        self.paused = None
        try:
            if cancelled:
                raise _Failed("57014", "canceling statement due to user request")
            self._finish_rows(sql, portal, PAUSE_AFTER, end, max_rows, simple_rest)
            if portal is None:
                self._run_parts(simple_rest)
        except _Failed as failure:
            self._fail(failure, portal is not None)
            if portal is None:
                self._end_query()

    # -- the reference's volume limits: what a client sees of a cut result -------------------
    # A simple Query string's limits count the rows of all its statements together; an
    # Execute's count its own. Past the limit the client gets 54000 and nothing more of the
    # string or batch but its ReadyForQuery: an extended batch fails; a simple string runs on
    # unseen, and a big result in it fails if our cancel lands (`cancels`), as on the server.

    def _reference_rows(self, sql, portal, start, end, max_rows, simple_rest) -> bool:
        values = SELECTS[sql][1]
        big = sql == "SELECT n FROM big"
        if big and self.cut_budget is None and not self.unseen:
            self.cut_budget = self.cut_after
        if self.unseen and big and self.cancel_due is not None:
            lands, self.cancel_due = self.cancel_due, None
            if lands:
                raise _Failed("57014", "canceling statement due to user request")
        for value in values[start:end]:
            if self._reference_row(self._row(sql, value), portal, big):
                return True
        if portal is not None:
            portal.position = end
            self.cut_budget = None
            if max_rows and end < len(values):
                self._send(PortalSuspended())
                return False
        self._send(CommandComplete(f"SELECT {end if portal is None else end - start}"))
        return False

    def _reference_row(self, row: DataRow, portal, big: bool) -> bool:
        """Send a row within the limit; past it, the cut. True when the statement stops here."""
        if self.cut_budget is None or self.unseen:
            self._send(row)
            return False
        if self.cut_budget:
            self.cut_budget -= 1
            self._send(row)
            return False
        return self._cut(portal, big)

    def _cut(self, portal, big: bool) -> bool:
        self._send(ErrorResponse.make("54000", self.cut_text))
        lands = self.cancels.popleft() if self.cancels else False
        if portal is not None or (big and lands):
            self._fail_after_cut(portal is not None)
            if portal is None:
                self._end_query()
            return True
        self.unseen = True
        if not big:
            self.cancel_due = lands
        return False

    def _fail_after_cut(self, extended: bool) -> None:
        if self.status == "T":
            self.status = "E"
        self.cut_budget = None
        if extended:
            self.ignore_till_sync = True
            self.implicit = False

    def _row(self, sql: str, value: bytes) -> DataRow:
        if self.reference and self.masker is not None and SELECTS[sql][0] == "email":
            value = self.masker.mask_text(value.decode(), "email").encode()
        return DataRow.from_values([value])

    def _masked_text(self, text: str) -> str:
        return self.masker.mask_message(text) if self.reference and self.masker is not None else text

    # ------------------------------------------------------------------------- COPY --

    def _copy_message(self, code: str, msg) -> None:
        simple = self.copy_in == "simple"
        if code == "d":
            self.copied += 1
            return
        if code in "SH":
            return                               # ignored during copy-in
        self.copy_in = None
        if code == "c":
            self._send(CommandComplete(f"COPY {self.copied}"))
            if simple:
                self._end_query()
            return
        failure = (_Failed("57014", f"COPY from stdin failed: {msg.message}") if code == "f" else
                   _Failed("08P01", f"unexpected message type 0x{ord(code):02X} during COPY from stdin"))
        self._fail(failure, not simple)
        if simple:
            self._end_query()


def _split(sql: str) -> list[str]:
    return [part.strip() for part in sql.split(";") if part.strip()] if sql.strip() else []


def _row_description(sql: str):
    if sql in SELECTS:
        return RowDescription((Field(SELECTS[sql][0], type_oid=25),))
    if sql in ("SELECT notice", "SELECT notify"):
        return RowDescription((Field("one", type_oid=23),))
    return None
