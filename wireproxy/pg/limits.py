"""Volume limits: count the rows of limited statements and cut a result that goes past a limit.

Rules with max_rows / max_bytes / max_session_bytes ride along on a Decision as `limits`. Rows of
such a statement are counted as they pass; past a limit no more rows reach the client, the relay
cancels the query upstream, and the client gets 54000 naming the rule where the result would
have ended (its CommandComplete or PortalSuspended). A cursor's limits come from its query at
DECLARE and hold across all its FETCHes, with one count. A mask rule with `binary = "refuse"`
stops a result the same way, with 42501.
"""

from __future__ import annotations

from typing import Any, Callable

from protocols.postgres import ErrorResponse

from ..policy import Action
from .protocol import LimitHit, Pending

PASS, DROP, CUT = 0, 1, 2          # what to do with a row: send it, drop it, drop it and cancel
_REFUSED = object()                 # the limits of an entry whose rows a mask rule refused


class VolumeLimits:
    __slots__ = ("emit", "active", "session_bytes", "cursors")

    def __init__(self, emit: Callable[[Any], None]):
        self.emit = emit
        self.active = 0                  # pending entries that carry limits: rows must be framed
        self.session_bytes = 0
        self.cursors: dict[str, tuple[Any, list]] = {}   # cursor -> (limits, [rows, bytes])

    def attach(self, decision, entry: Pending | None) -> None:
        """The limits a statement's rows run under, if any."""
        if entry is None or not decision.allowed or (decision.limits is None and not self.cursors):
            return
        limits, counts = decision.limits, None
        for st in decision.facts or ():
            if "cursor" in st.flags and limits is not None:
                self.cursors[st.name] = (limits, [0, 0])
            elif "fetch" in st.flags and st.name in self.cursors:
                limits, counts = self.cursors[st.name]
        if limits is not None:
            entry.limits = limits
            self.active += 1
            if counts is not None:
                entry.counts = counts

    def row(self, entry: Pending, size: int) -> int:
        """Count a row (or COPY line) of `size` bytes: PASS, DROP, or CUT the first time a limit
        is passed (the caller cancels the query upstream)."""
        if entry.cut:
            return DROP
        limits = entry.limits
        if limits is None or limits is _REFUSED:
            return PASS
        counts = entry.counts
        if counts is None:
            counts = entry.counts = [0, 0]
        counts[0] += 1
        counts[1] += size
        if limits.max_session_bytes is not None:
            self.session_bytes += size
        why = self._exceeded(limits, counts)
        if why is None:
            return PASS
        rule = ",".join(limits.rule_ids)
        self.emit(LimitHit(rule, why, limits.action.name.lower()))
        if limits.action < Action.APPROVE:              # audit: logged, rows go on
            self.finished(entry)
            return PASS
        entry.cut = ("54000", f"result cut by wireproxy rule {rule}: {why}"
                     + (f": {limits.message}" if limits.message else ""))
        return CUT

    def _exceeded(self, limits, counts: list) -> str | None:
        if limits.max_rows is not None and counts[0] > limits.max_rows:
            return f"more than {limits.max_rows} rows"
        if limits.max_bytes is not None and counts[1] > limits.max_bytes:
            return f"more than {limits.max_bytes} bytes"
        if limits.max_session_bytes is not None and self.session_bytes > limits.max_session_bytes:
            return f"more than {limits.max_session_bytes} bytes in this session"
        return None

    def refuse(self, entry: Pending, reason: str) -> bool:
        """No row of this result may reach the client; True the first time (cancel upstream)."""
        if entry.cut:
            return False
        entry.cut = ("42501", f"blocked by wireproxy: {reason}")
        if entry.limits is None:
            entry.limits = _REFUSED
            self.active += 1
        return True

    def cut_error(self, entry: Pending) -> bytes:
        """The error that ends a cut result, in place of its CommandComplete or PortalSuspended."""
        (sqlstate, text), entry.cut = entry.cut, None
        self.finished(entry)
        return ErrorResponse.make(sqlstate, text).encode()

    def finished(self, entry: Pending) -> None:
        if entry.limits is not None:
            entry.limits = None
            self.active -= 1
