"""Rate limits per client identity: requests and tokens per minute, as token buckets.

A bucket holds up to one minute's allowance and refills continuously. A request takes one
request; the tokens an answer says it used (`usage`) are taken after it, so the bucket can
go below zero and the next requests wait until it has refilled: a runaway agent is slowed to
the configured rate, never cut off mid-answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class _Bucket:
    per_minute: float
    level: float
    at: float

    def refill(self, now: float) -> None:
        self.level = min(self.per_minute, self.level + (now - self.at) * self.per_minute / 60.0)
        self.at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing * 60.0 / self.per_minute


@dataclass
class RateLimiter:
    clock: Callable[[], float] = time.monotonic
    _requests: dict[str, _Bucket] = field(default_factory=dict)
    _tokens: dict[str, _Bucket] = field(default_factory=dict)

    def _bucket(self, table: dict[str, _Bucket], who: str, per_minute: int) -> _Bucket:
        now = self.clock()
        bucket = table.get(who)
        if bucket is None or bucket.per_minute != per_minute:
            bucket = table[who] = _Bucket(float(per_minute), float(per_minute), now)
        bucket.refill(now)
        return bucket

    def admit(self, who: str, requests_per_minute: int | None, tokens_per_minute: int | None) -> float:
        """0 when the request may go now (and it is counted), else seconds to wait."""
        wait = 0.0
        if tokens_per_minute:
            wait = max(wait, self._bucket(self._tokens, who, tokens_per_minute).wait_for(1e-9))
        if requests_per_minute:
            bucket = self._bucket(self._requests, who, requests_per_minute)
            wait = max(wait, bucket.wait_for(1.0))
            if wait == 0.0:
                bucket.level -= 1.0
        return wait

    def spend_tokens(self, who: str, tokens_per_minute: int | None, tokens: int) -> None:
        if tokens_per_minute and tokens > 0:
            self._bucket(self._tokens, who, tokens_per_minute).level -= tokens
