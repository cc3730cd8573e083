"""The admin API listener: approvals, health and metrics (api.py) over HTTP/1.1 (http.py, h11),
behind a bearer token kept in a 0600 file (token.py).

    api = AdminApi(broker, token)
    sockets = await trio.open_tcp_listeners(port, host=host)
    await nursery.start(serve_admin, sockets, api)
"""

from __future__ import annotations

import functools

import trio

from ..streams import peer_of
from ..telemetry.logs import log
from .api import AdminApi
from .http import serve_connection
from .token import ensure_token, read_token

MAX_CONNECTIONS = 64


async def serve_admin(sockets: list[trio.SocketListener], api: AdminApi, *,
                      max_connections: int = MAX_CONNECTIONS, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve the admin API on these listeners, at most `max_connections` clients at once."""
    active = 0

    async def handler(stream: trio.SocketStream) -> None:
        nonlocal active
        host, port = peer_of(stream)
        if active >= max_connections:
            log("admin.refused", level="warning", client=f"{host}:{port}", reason="too many connections")
            await trio.aclose_forcefully(stream)
            return
        active += 1
        try:
            await serve_connection(stream, api, f"{host}:{port}")
        finally:
            active -= 1

    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(trio.serve_listeners, handler, sockets))
        task_status.started()


__all__ = ["AdminApi", "ensure_token", "read_token", "serve_admin"]
