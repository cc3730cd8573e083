"""Routing CancelRequests: they arrive on a new connection and name a backend by its key.

Every session registers the BackendKeyData its upstream gave it; a CancelRequest is sent on to
the upstream that owns the key, whichever listener it came in on. Secrets are compared in
constant time; an unknown key is dropped silently, as PostgreSQL does. With several workers
a key unknown here is handed to the sibling workers (wireproxy.workers.siblings) first.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import trio

from protocols.postgres import CancelRequest

from ..config import Address
from ..streams import connect
from ..telemetry.logs import log


class CancelRegistry:
    def __init__(self) -> None:
        self._by_pid: dict[int, list[tuple[bytes, Address, Callable[[], bool] | None]]] = {}
        # Workers: hands a key this process does not know to the others -> whether one knew it.
        self.siblings: Callable[[CancelRequest], Awaitable[bool]] | None = None

    def add(self, pid: int, secret: bytes, upstream: Address,
            intercept: Callable[[], bool] | None = None) -> None:
        """A session's key. `intercept()` lets the session take a cancel itself (a statement
        held for approval runs nowhere upstream): True when it did."""
        self._by_pid.setdefault(pid, []).append((secret, upstream, intercept))

    def remove(self, pid: int, secret: bytes, upstream: Address) -> None:
        entries = self._by_pid.get(pid, [])
        entries[:] = [e for e in entries if e[:2] != (secret, upstream)]
        if not entries:
            self._by_pid.pop(pid, None)

    def find(self, pid: int, secret: bytes) -> tuple[Address, Callable[[], bool] | None] | None:
        found = None
        for known, upstream, intercept in self._by_pid.get(pid, ()):
            if hmac.compare_digest(known, secret):
                found = (upstream, intercept)
        return found

    async def forward(self, request: CancelRequest, client: str) -> None:
        if await self.act(request, client):
            return
        if self.siblings is not None and await self.siblings(request):
            log("cancel.relayed", client=client, backend_pid=request.process_id)
            return
        log("cancel.unknown", client=client, backend_pid=request.process_id)

    async def act(self, request: CancelRequest, client: str = "sibling worker") -> bool:
        """Cancel what runs under this key, if this process knows it. -> whether it did."""
        found = self.find(request.process_id, request.secret)
        if found is None:
            return False
        upstream, intercept = found
        if intercept is not None and intercept():
            log("cancel.withdrew_approval", client=client, backend_pid=request.process_id)
            return True
        await send_cancel(upstream, request)
        log("cancel.forwarded", client=client, backend_pid=request.process_id, upstream=str(upstream))
        return True


async def send_cancel(upstream: Address, request: CancelRequest, timeout: float = 5.0) -> None:
    try:
        stream = await connect(upstream.host, upstream.port, timeout)
    except OSError as exc:
        log("cancel.failed", level="warning", upstream=str(upstream), error=str(exc))
        return
    try:
        with trio.move_on_after(timeout):
            await stream.send_all(request.encode())
            while await stream.receive_some(1024):   # the server closes when it has read it
                pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
