"""SessionRecorder: what a relay holds for one session's log. Every method is cheap and never
blocks; the SessionLog's writer service does the encrypting and writing."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .files import LogSession

if TYPE_CHECKING:
    from .writer import SessionLog

_now = time.time


class SessionRecorder:
    """One session's handle on the log. Every method is cheap and never blocks."""

    __slots__ = ("id", "_log", "_s")

    def __init__(self, log: "SessionLog", session: LogSession):
        self.id = session.id
        self._log = log
        self._s = session

    def record(self, entry: dict[str, Any]) -> None:
        """Queue one record (a JSON-serialisable dict; the log adds `seq` and `ts`). The dict
        belongs to the log from now on: do not change it afterwards. Never raises, never blocks:
        check `failed` before the statement, not after."""
        s = self._s
        if s.closing:
            return
        if s.failed is not None:
            s.dropped += 1
            return
        queue = s.queue
        if not queue:
            self._log._active[s] = None
        queue.append((entry, _now()))
        self._log._enqueued += 1

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """End the session: queue the sealed final record (with `summary`) and wake the writer.
        Further records are ignored; closing twice does nothing."""
        s = self._s
        if s.closing:
            return
        s.closing = True
        self._log._queue_end(s, summary)

    @property
    def failed(self) -> str | None:
        """Why this session must not go on (fail-closed), or None. Check before each statement."""
        log = self._log
        if log.fail_open:
            return None
        return self._s.failed or log.failed

    @property
    def wants_results(self) -> bool:
        """Whether result rows are still worth collecting: the per-session byte cap is not used up
        (lags the writer by up to one flush; rows past the cap are trimmed there)."""
        return self._s.result_budget > 0

    @property
    def congested(self) -> bool:
        log = self._log
        return log._enqueued - log._taken >= log.max_pending

    async def wait_room(self) -> None:
        """Backpressure: returns at once unless the queue is past `max_pending`."""
        await self._log.wait_room()
