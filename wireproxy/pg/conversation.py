"""The conversation core: which answers the server owes, and which one each server message is.

It knows the protocol and nothing else (no policy, masking or recording): the relay tells it what
it forwarded, in order, and it keeps one `Pending` entry per answer the server owes, the way
PostgreSQL's own loop (postgres.c) will answer:
- Query, FunctionCall and Sync end at ReadyForQuery; Parse, Bind, Describe, Execute and Close
  each get one answer (`protocol.ANSWERS`); Flush gets none.
- An error in an extended-protocol message makes the server skip everything up to Sync; a
  message that arrives while it skips gets no answer at all (`discarding`).
- During COPY FROM STDIN the server reads the client's messages itself: it ignores Sync and
  Flush (libpq sends a Sync after Execute before it knows the statement was a COPY), and any
  other message ends the copy with an error, consumed. Which client messages fell inside the
  copy is known only when CopyInResponse arrives, so CopyDone/CopyFail leave a COPY_END marker
  in the queue and CopyInResponse settles everything up to it.
- The proxy's own queries (`ask`) and Describes (`internal`) get entries too, marked internal:
  their answers go to the proxy, never to the client.
"""

from __future__ import annotations

from collections import deque

from protocols.postgres import Bind, Close, Execute, Flush, Parse, Query

from .protocol import ANSWERS, ENDS_AT_READY, Pending, Wait


_OWN = "wireproxy_lookup"       # our statement and portal inside a client's batch
_RUNS_STATEMENTS = frozenset({Wait.QUERY, Wait.FUNCTION, Wait.EXECUTE})


class Conversation:
    __slots__ = ("full", "pending", "discarding", "copy_in", "transaction_status", "settled", "status_known",
                 "in_batch")

    def __init__(self, *, full: bool = True) -> None:
        # full: every answer is expected. Otherwise (a relay with nothing to inspect) only the
        # sync points are: the statement that begins a copy then has no entry of its own, and
        # a COPY_END marker at the head may be the end of the copy still to come.
        self.full = full
        self.pending: deque[Pending] = deque()
        self.discarding = False        # the server skips messages up to the next Sync
        self.copy_in = False           # the server is in COPY FROM STDIN reading the client
        self.transaction_status = "I"
        self.settled = True            # nothing sent since the last ReadyForQuery
        self.status_known = True       # nothing that runs a statement sent since: its status holds
        self.in_batch = False          # extended-protocol messages sent since the last sync point

    @property
    def head(self) -> Pending | None:
        return self.pending[0] if self.pending else None

    @property
    def busy(self) -> bool:
        return bool(self.pending)

    # ------------------------------------------------------------- what the client sent --

    def expect(self, wait: Wait) -> Pending | None:
        """A forwarded message the server will answer; None when the server will skip it."""
        self.settled = False
        if wait in _RUNS_STATEMENTS:   # only these can end or abort a transaction
            self.status_known = False
        self.in_batch = wait not in ENDS_AT_READY
        if self.discarding:
            return None
        if self.copy_in:           # read by the copy: it fails the copy, and is answered by nothing
            self.copy_in = False
            return None
        entry = Pending(wait)
        self.pending.append(entry)
        return entry

    def sync(self) -> Pending | None:
        self.settled = False
        self.in_batch = False
        if self.copy_in:           # ignored by the server during copy-in
            return None
        self.discarding = False
        entry = Pending(Wait.SYNC)
        self.pending.append(entry)
        return entry

    def copy_end(self) -> None:
        """CopyDone or CopyFail: ends a copy-in the server is known to be in, or marks where
        one would end if a statement still queued turns out to be a COPY."""
        if self.copy_in:
            self.copy_in = False
        elif not self.discarding and (self.pending or not self.full):
            self.pending.append(Pending(Wait.COPY_END, internal=True))

    def internal(self, wait: Wait) -> Pending | None:
        """Our own extended-protocol message (a Describe), sent in the client's stream."""
        entry = self.expect(wait)
        if entry is not None:
            entry.internal = True
        return entry

    def ask(self, lookup) -> bytes:
        """Our own read-only query; its answers belong to `lookup`. The caller holds the client's
        input until it is answered, and never asks while the server skips or is in a copy.
        Between batches it is a simple Query. Inside an open extended-protocol batch a Query
        would commit the batch's implicit transaction, so it goes as Parse/Bind/Execute/Close of
        a statement and portal of our own, in the batch: its Execute's entry carries `lookup`."""
        if not self.in_batch or not self.full:
            self.settled = self.status_known = False
            self.pending.append(Pending(Wait.LOOKUP, internal=True, lookup=lookup))
            return Query(lookup.sql).encode()
        for wait in (Wait.PARSE, Wait.BIND, Wait.EXECUTE, Wait.CLOSE, Wait.CLOSE):
            self.pending.append(Pending(wait, internal=True))      # an error of it fails the batch:
                                                                   # the client hears it
        self.pending[-3].lookup = lookup
        name = _OWN
        return b"".join((Parse(name, lookup.sql).encode(), Bind(name, name).encode(),
                         Execute(name, 0).encode(), Close("P", name).encode(), Close("S", name).encode(),
                         Flush().encode()))        # the server holds its answers until a Flush

    # ------------------------------------------------------------- what the server said --

    def answered(self, code: int) -> Pending | None:
        """The entry a ParseComplete/BindComplete/CloseComplete/RowDescription/NoData/
        CommandComplete/EmptyQueryResponse/PortalSuspended completes, popped (None when it is
        part of a Query's or FunctionCall's answer instead)."""
        pending = self.pending
        if pending and pending[0].wait is ANSWERS[code]:
            entry = pending.popleft()
            if pending and pending[0].wait is Wait.COPY_END:
                self._drop_markers()
            return entry
        return None

    def ready(self, status: str) -> list[Pending]:
        """ReadyForQuery: the entries it completes, popped up to and including the sync point."""
        self.transaction_status = status
        self.copy_in = False
        done = []
        pending = self.pending
        while pending:
            entry = pending.popleft()
            done.append(entry)
            if entry.wait in ENDS_AT_READY:
                break
        if self.full:
            self._drop_markers()
        self.settled = self.status_known = not pending
        return done

    def error(self) -> list[Pending]:
        """ErrorResponse: in the extended protocol the server now skips to Sync, and so do the
        expectations; the entries popped (the one that failed first). A Query's or Sync's own
        error pops nothing: their ReadyForQuery follows."""
        self.copy_in = False
        pending = self.pending
        if not self.full or not pending or pending[0].wait in ENDS_AT_READY:
            return []
        done = []
        while pending and pending[0].wait is not Wait.SYNC:
            done.append(pending.popleft())
        self.discarding = not pending
        return done

    def copy_started(self) -> None:
        """CopyInResponse for the head entry: the client messages sent after it, up to its
        CopyDone or CopyFail, are the copy's to read."""
        pending = self.pending
        # The statement that began the copy is the head when every answer is expected; with only
        # sync points kept, a simple Query is, but an Execute has no entry: its batch's Sync
        # (or the copy's own end) may be the head itself.
        index = 1 if self.full or (pending and pending[0].wait is Wait.QUERY) else 0
        while index < len(pending):
            wait = pending[index].wait
            if wait is Wait.COPY_END:
                del pending[index]
                return
            del pending[index]
            if wait is not Wait.SYNC:      # read by the copy reader, which fails the copy
                return
        self.copy_in = True

    def _drop_markers(self) -> None:
        pending = self.pending
        while pending and pending[0].wait is Wait.COPY_END:
            pending.popleft()
