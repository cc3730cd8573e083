"""Whether the upstreams answer: probed when serve starts, and again for /healthz.

serve never refuses to start over an upstream (it may come up later, and clients then get
08001 naming it until it does); it says so once per unreachable upstream, at start
(`upstream.down`), and again whenever one changes state (`upstream.up`, `upstream.down`); the
per-connection failures are the sessions' own `upstream.unreachable`. A probe is a TCP connect with a short timeout, all upstreams at once;
it sends nothing, so the server logs nothing. /healthz is tokenless: it re-probes at most every
`max_age` seconds, however often it is asked, so it cannot be used to hammer the upstreams.
"""

from __future__ import annotations

from typing import Iterable

import trio

from .telemetry.logs import log

REACHABLE = "reachable"
UNREACHABLE = "unreachable"


class UpstreamHealth:
    def __init__(self, upstreams: Iterable[tuple[str, object]], *, timeout: float = 2.0, max_age: float = 5.0):
        """`upstreams`: (kind, address) per listener, e.g. ("postgres", Address("127.0.0.1", 5432))."""
        self.kinds: dict[str, set[str]] = {}
        self.addresses: dict[str, object] = {}
        for kind, address in upstreams:
            self.kinds.setdefault(str(address), set()).add(kind)
            self.addresses[str(address)] = address
        self.timeout = timeout
        self.max_age = max_age
        self.states: dict[str, str] = {}
        self._probed_at: float | None = None
        self._lock = trio.Lock()

    async def probe(self) -> dict[str, str]:
        """Connect to every upstream at once; log each one that does not answer (or that changed)."""
        async with self._lock:
            await self._probe_all()
        return dict(self.states)

    async def current(self) -> dict[str, str]:
        """The states, re-probed when older than max_age (one probe at a time, shared)."""
        async with self._lock:
            if self._probed_at is None or trio.current_time() - self._probed_at >= self.max_age:
                await self._probe_all()
        return dict(self.states)

    async def _probe_all(self) -> None:
        results: dict[str, tuple[str, str | None]] = {}
        async with trio.open_nursery() as nursery:
            for name, address in self.addresses.items():
                nursery.start_soon(self._probe_one, name, address, results)
        for name, (state, reason) in sorted(results.items()):
            self._note(name, state, reason)
        self._probed_at = trio.current_time()

    async def _probe_one(self, name: str, address, results: dict) -> None:
        reason = f"no answer within {self.timeout:g} s"
        with trio.move_on_after(self.timeout):
            try:
                stream = await trio.open_tcp_stream(address.host, address.port)
            except OSError as exc:
                reason = _reason(exc)
            else:
                await trio.aclose_forcefully(stream)
                results[name] = (REACHABLE, None)
                return
        results[name] = (UNREACHABLE, reason)

    def _note(self, name: str, state: str, reason: str | None) -> None:
        before = self.states.get(name)
        self.states[name] = state
        if state == before or (before is None and state == REACHABLE):
            return
        kinds = ",".join(sorted(self.kinds[name]))
        if state == UNREACHABLE:
            log("upstream.down", level="warning", upstream=name, kind=kinds, error=reason,
                note="serving anyway: clients get 08001 naming this upstream until it answers")
        else:
            log("upstream.up", upstream=name, kind=kinds)


def _reason(exc: OSError) -> str:
    """"Connection refused", not trio's "all attempts to connect to ... failed" around it."""
    cause = exc.__cause__
    while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        cause = cause.exceptions[0]
    for error in (cause, exc):
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
    return str(exc)
