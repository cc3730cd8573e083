"""Routing CancelRequests: they arrive on a new connection and name a backend by its key.

Every session registers the BackendKeyData its upstream gave it; a CancelRequest is sent on to
the upstream that owns the key, whichever listener it came in on. Secrets are compared in
constant time; an unknown key is dropped silently, as PostgreSQL does.
"""

from __future__ import annotations

import hmac

import trio

from protocols.postgres import CancelRequest

from ..config import Address
from ..telemetry.logs import log
from ..streams import connect


class CancelRegistry:
    def __init__(self) -> None:
        self._by_pid: dict[int, list[tuple[bytes, Address]]] = {}

    def add(self, pid: int, secret: bytes, upstream: Address) -> None:
        self._by_pid.setdefault(pid, []).append((secret, upstream))

    def remove(self, pid: int, secret: bytes, upstream: Address) -> None:
        entries = self._by_pid.get(pid, [])
        if (secret, upstream) in entries:
            entries.remove((secret, upstream))
        if not entries:
            self._by_pid.pop(pid, None)

    def find(self, pid: int, secret: bytes) -> Address | None:
        found = None
        for known, upstream in self._by_pid.get(pid, ()):
            if hmac.compare_digest(known, secret):
                found = upstream
        return found

    async def forward(self, request: CancelRequest, client: str) -> None:
        upstream = self.find(request.process_id, request.secret)
        if upstream is None:
            log("cancel.unknown", client=client, backend_pid=request.process_id)
            return
        await send_cancel(upstream, request)
        log("cancel.forwarded", client=client, backend_pid=request.process_id, upstream=str(upstream))


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
