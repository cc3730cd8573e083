"""CONNECT on the forward proxy: interception for the listed hosts, a blind tunnel (or a
refusal) for the others.

Intercepted: wireproxy answers 200, speaks TLS to the client with a leaf certificate its CA
minted for the host (the client must trust wireproxy's CA), and serves the decrypted requests
like any others, sending them on to the host over verified TLS. Not listed, `unlisted =
"tunnel"`: the bytes are relayed untouched (wireproxy sees nothing but the host name);
`unlisted = "refuse"`: 403.
"""

from __future__ import annotations

from pathlib import Path

import trio

from wireproxy.config.rulefile import Globs
from wireproxy.config.settings import parse_address
from wireproxy.telemetry.logs import log

from ..streams import connect
from ..tcp.forward import pump
from .ca import DEFAULT_CERT, DEFAULT_KEY, CaError, LeafMinter
from .client import Origin
from .errors import HttpError
from .identity import identify, proxy_key
from .serverconn import ClientGone, Request, ServerConnection


class _Prefixed(trio.abc.Stream):
    """A stream that first gives back bytes already read from it."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes):
        self.stream = stream
        self.prefix = prefix

    async def receive_some(self, max_bytes=None) -> bytes:
        if self.prefix:
            data, self.prefix = self.prefix, b""
            return data
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()


class Tunnels:
    def __init__(self, proxy):
        self.proxy = proxy
        settings = proxy.settings
        self.globs = Globs(settings.intercept, ignore_case=True)
        self.minter: LeafMinter | None = None
        if settings.intercept:
            cert = settings.ca_cert or Path(DEFAULT_CERT)
            key = settings.ca_key or Path(DEFAULT_KEY)
            try:
                self.minter = LeafMinter(cert, key)
            except CaError as exc:
                from wireproxy.config.tomlfile import ConfigError
                raise ConfigError(cert, None, str(exc)) from None

    def listed(self, host: str) -> bool:
        return self.globs.match(host.lower().rstrip("."))

    async def connect(self, conn: ServerConnection, request: Request, peer: str) -> None:
        try:
            address = parse_address(request.target)
        except ValueError:
            await conn.send_error(HttpError(400, f"CONNECT needs host:port, not {request.target!r}"))
            return
        host, port = address.host, address.port
        if self.proxy.keys and identify(self.proxy.keys, proxy_key(request.headers)) is None:
            # with client keys configured the forward proxy is no open relay: CONNECT needs one
            log("http.connect_refused", level="warning", client=peer, host=host, port=port, reason="no client key")
            await conn.send_error(HttpError(407, "wireproxy: CONNECT needs a client key (HTTPS_PROXY=http://NAME:KEY@...)",
                                            type="authentication_error",
                                            headers=[("proxy-authenticate", 'Basic realm="wireproxy"')]))
            return
        if self.listed(host) and self.minter is not None:
            await self._intercept(conn, host, port, peer)
        elif self.proxy.settings.unlisted == "refuse":
            log("http.connect_refused", level="warning", client=peer, host=host, port=port)
            await conn.send_error(HttpError(403, f"wireproxy does not tunnel to {host} (not in intercept)",
                                            type="blocked"))
        else:
            await self._tunnel(conn, host, port, peer)

    async def _switch(self, conn: ServerConnection) -> trio.abc.Stream:
        await conn.send_head(200, [])
        leftover = conn.h11.trailing_data[0]
        return _Prefixed(conn.stream, bytes(leftover)) if leftover else conn.stream

    async def _intercept(self, conn: ServerConnection, host: str, port: int, peer: str) -> None:
        stream = await self._switch(conn)
        seen: list[str] = []
        tls = trio.SSLStream(stream, self.minter.server_context(host, seen), server_side=True,
                             https_compatible=True)
        try:
            with trio.fail_after(self.proxy.settings.header_timeout):
                await tls.do_handshake()
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log("http.intercept_failed", level="warning", client=peer, host=host,
                error=f"TLS handshake with the client failed ({type(exc).__name__}); does it trust wireproxy's CA?")
            return
        log("http.intercept", client=peer, host=host, port=port, sni=seen[0] if seen else None)
        await self.proxy.serve_connection(tls, peer, Origin("https", host, port))

    async def _tunnel(self, conn: ServerConnection, host: str, port: int, peer: str) -> None:
        try:
            upstream = await connect(host, port, self.proxy.settings.connect_timeout)
        except OSError as exc:
            await conn.send_error(HttpError(502, f"cannot reach {host}:{port}: {exc.strerror or exc}"))
            return
        try:
            try:
                client = await self._switch(conn)
            except ClientGone:
                return
            counts = {"from_client": 0, "from_server": 0}
            log("http.tunnel", client=peer, host=host, port=port)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, client, upstream, counts, "from_client", nursery.cancel_scope)
                nursery.start_soon(pump, upstream, client, counts, "from_server", nursery.cancel_scope)
            log("http.tunnel_closed", client=peer, host=host, bytes_from_client=counts["from_client"],
                bytes_from_server=counts["from_server"])
        finally:
            await trio.aclose_forcefully(upstream)
