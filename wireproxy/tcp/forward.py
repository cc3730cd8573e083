"""The L4 half: forward any TCP protocol wireproxy does not parse yet, untouched.

Same accept loop, limits and shutdown as the Postgres listeners; clients outside `allow_from`
are closed at once; every connection leaves an open and a close record with bytes each way.
"""

from __future__ import annotations

import time

import trio

from ..telemetry.logs import log
from ..config import TcpListener
from ..streams import BUFSIZE, connect, peer_of

_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)


async def handle_tcp(client: trio.SocketStream, listener: TcpListener) -> None:
    host, port = peer_of(client)
    peer = f"{host}:{port}"
    if not listener.allows(host):
        log("tcp.refused", level="warning", client=peer, listener=str(listener.listen), reason="not in allow_from")
        await trio.aclose_forcefully(client)
        return
    started = time.monotonic()
    counts = {"from_client": 0, "from_server": 0}
    reason = "closed"
    server = None
    log("tcp.open", client=peer, listener=str(listener.listen), upstream=str(listener.upstream))
    try:
        try:
            server = await connect(listener.upstream.host, listener.upstream.port, listener.connect_timeout)
        except OSError as exc:
            reason = f"upstream unreachable: {exc.strerror or exc}"
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump, client, server, counts, "from_client", nursery.cancel_scope)
            nursery.start_soon(pump, server, client, counts, "from_server", nursery.cancel_scope)
    finally:
        with trio.CancelScope(shield=True):
            if server is not None:
                await trio.aclose_forcefully(server)
            await trio.aclose_forcefully(client)
        log("tcp.close", client=peer, listener=str(listener.listen), upstream=str(listener.upstream),
            bytes_from_client=counts["from_client"], bytes_from_server=counts["from_server"],
            duration_s=round(time.monotonic() - started, 3), reason=reason)


async def pump(source, sink, counts: dict, key: str, scope: trio.CancelScope) -> None:
    """Copy until EOF, then half-close the sink so request/response protocols finish cleanly."""
    try:
        while data := await source.receive_some(BUFSIZE):
            counts[key] += len(data)
            await sink.send_all(data)
        try:
            await sink.send_eof()
        except (*_GONE, AttributeError):
            scope.cancel()
            return
        if counts.get("eof"):
            scope.cancel()
        counts["eof"] = 1
    except _GONE:
        scope.cancel()
