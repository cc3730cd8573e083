"""Failed logins, slowed per client address: a password-guessing loop gets exponentially slower.

    delay = limiter.delay(peer)         # wait this long before answering the attempt
    ... authenticate ...
    limiter.failed(peer) / limiter.succeeded(peer)

Keyed by host (the port changes with every connection). The first `free_failures` cost
nothing, then each failure doubles the delay from `base_delay` up to `max_delay`; an address
quiet for `window` seconds is forgotten. At most `max_tracked` addresses are remembered: the
one that failed longest ago goes first, so memory stays bounded under a spray of addresses.
No I/O and no sleeping here; the clock is injected, so tests use a fake one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int
    last: float                                 # clock time of the latest failure


def host_of(address: str | tuple) -> str:
    """The host part of "host:port", "[v6]:port", a bare host or a (host, port, ...) tuple."""
    if isinstance(address, tuple):
        return str(address[0]) if address else ""
    text = str(address)
    if text.startswith("["):
        return text[1:text.index("]")] if "]" in text else text
    if text.count(":") == 1:                    # more than one colon: a bare IPv6 address
        return text.rsplit(":", 1)[0]
    return text


class LoginLimiter:
    def __init__(self, *, free_failures: int = 3, base_delay: float = 0.5, max_delay: float = 10.0,
                 window: float = 300.0, max_tracked: int = 10000, clock: Callable[[], float] = time.monotonic):
        if free_failures < 0 or base_delay < 0 or max_delay < base_delay or window <= 0 or max_tracked < 1:
            raise ValueError("LoginLimiter needs free_failures >= 0, 0 <= base_delay <= max_delay, "
                             "window > 0 and max_tracked >= 1")
        self.free_failures, self.base_delay, self.max_delay = free_failures, base_delay, max_delay
        self.window, self.max_tracked, self._clock = window, max_tracked, clock
        self._records: OrderedDict[str, _Record] = OrderedDict()     # oldest failure first

    def __len__(self) -> int:
        """How many addresses are remembered (for metrics and tests)."""
        return len(self._records)

    def delay(self, address: str) -> float:
        """Seconds to wait before answering this address's next attempt."""
        record = self._current(host_of(address))
        if record is None or record.failures <= self.free_failures:
            return 0.0
        doublings = min(record.failures - self.free_failures - 1, 64)
        return min(self.max_delay, self.base_delay * 2.0 ** doublings)

    def failed(self, address: str) -> None:
        host, now = host_of(address), self._clock()
        record = self._current(host)
        if record is None:
            record = self._records[host] = _Record(0, now)
        record.failures += 1
        record.last = now
        self._records.move_to_end(host)
        self._forget_old(now)

    def succeeded(self, address: str) -> None:
        self._records.pop(host_of(address), None)

    def _current(self, host: str) -> _Record | None:
        record = self._records.get(host)
        if record is not None and self._clock() - record.last >= self.window:
            del self._records[host]
            return None
        return record

    def _forget_old(self, now: float) -> None:
        # Ordered by latest failure, so the quiet ones are at the front.
        while self._records:
            host, oldest = next(iter(self._records.items()))
            if now - oldest.last < self.window and len(self._records) <= self.max_tracked:
                break
            del self._records[host]
