"""An `[[http]]` listener: the reverse proxy (with `upstream`) and the forward proxy (without).

    proxy = HttpProxy(listener_settings, rulebook, session_log, approvals=None)
    await proxy.handle(stream)            # one client connection, as trio.serve_listeners calls it

Reverse: every request goes to the upstream origin, its path appended to the upstream URL's.
Forward: absolute-form requests (`GET http://host/path`) go to the host they name; CONNECT
opens a tunnel (forward.py): intercepted for the hosts the config lists (TLS with a leaf
certificate from wireproxy's CA, then the same inspection), passed through untouched or refused
for the others. Requests on an intercepted tunnel go to the tunnel's host.
"""

from __future__ import annotations

import os

import trio

from wireproxy.config.tomlfile import ConfigError
from wireproxy.telemetry.logs import log
from wireproxy.tls import ServerTLS, TLSConfigError

from .client import HttpClient, Origin
from .errors import HttpError
from .exchange import Exchange
from .identity import ClientKey
from .ratelimit import RateLimiter
from .recording import ConnectionContext
from .rules import HttpRules
from .serverconn import ClientGone, Limits, Request, ServerConnection


def _client_tls(settings) -> ServerTLS | None:
    if settings.tls_cert is None:
        return None
    try:
        return ServerTLS(settings.tls_cert, settings.tls_key)
    except TLSConfigError as exc:
        raise ConfigError(settings.tls_cert, None, str(exc)) from None


def _upstream_ssl(settings):
    import ssl
    context = ssl.create_default_context()            # system store; honours SSL_CERT_FILE
    if settings.upstream_ca is not None:
        try:
            context.load_verify_locations(cafile=str(settings.upstream_ca))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(settings.upstream_ca, None, f"cannot load upstream_ca: {exc}") from None
    return context


class HttpProxy:
    def __init__(self, settings, book=None, session_log=None, approvals=None):
        self.settings = settings
        self.rules = HttpRules(book)
        self.session_log = session_log
        self.approvals = approvals
        self.limiter = RateLimiter()
        self.keys = tuple(ClientKey(c.name, c.key_sha256, c.requests_per_minute, c.tokens_per_minute,
                                    frozenset(c.groups))
                          for c in settings.clients)
        self.upstream_key = None
        if settings.upstream_key_env:
            self.upstream_key = os.environ.get(settings.upstream_key_env) or None
            if self.upstream_key is None:
                raise ConfigError("[[http]]", None, f"upstream_key_env: environment variable "
                                  f"{settings.upstream_key_env} is not set")
            if not all(33 <= ord(ch) < 127 for ch in self.upstream_key):
                raise ConfigError("[[http]]", None, f"upstream_key_env: the key in {settings.upstream_key_env} "
                                  "has spaces or characters a header cannot carry")
        self.limits = Limits(settings.max_header_bytes, settings.max_body_bytes, settings.header_timeout,
                             settings.body_timeout, settings.idle_timeout)
        self.client = HttpClient(connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
                                 ssl_context=_upstream_ssl(settings))
        self.upstream: tuple[Origin, str] | None = None
        if settings.upstream:
            origin, path = Origin.parse(settings.upstream)
            self.upstream = (origin, path.rstrip("/"))
        self.tunnels = None
        if self.upstream is None:
            from .forward import Tunnels
            self.tunnels = Tunnels(self)
        self.tls = _client_tls(settings)
        self.active = 0
        self.connections: set[ServerConnection] = set()
        self.stopping = False

    def close_idle(self) -> None:
        """Shutdown: connections waiting for a next request close now; the others after the
        exchange in flight."""
        self.stopping = True
        for conn in list(self.connections):
            if conn.idle_scope is not None:
                conn.idle_scope.cancel()

    async def handle(self, stream: trio.abc.Stream, peer: str | None = None) -> None:
        if peer is None:
            try:
                host, port = stream.socket.getpeername()[:2]
                peer = f"{host}:{port}"
            except (OSError, AttributeError):
                peer = "?"
        self.active += 1
        try:
            if self.active > self.settings.max_connections:
                conn = ServerConnection(stream, self.limits, peer)
                await self._refuse(conn, HttpError(503, "too many connections (wireproxy limit)"))
                return
            if self.tls is not None:
                stream = await self._tls_handshake(stream, peer)
                if stream is None:
                    return
            await self.serve_connection(stream, peer, None)
        finally:
            self.active -= 1
            await trio.aclose_forcefully(stream)

    async def _tls_handshake(self, stream, peer: str):
        tls = trio.SSLStream(stream, self.tls.context, server_side=True, https_compatible=True)
        try:
            with trio.fail_after(self.limits.header_timeout):
                await tls.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            cause = exc.__cause__ or exc
            log("http.tls_failed", level="warning", client=peer, error=str(cause) or type(cause).__name__)
            return None
        return tls

    async def _refuse(self, conn: ServerConnection, error: HttpError) -> None:
        try:
            with trio.move_on_after(self.limits.header_timeout):
                await conn.next_request()
            await conn.send_error(error)
        except (HttpError, ClientGone):
            pass

    async def serve_connection(self, stream: trio.abc.Stream, peer: str, tunnel: Origin | None) -> None:
        """Requests on one connection until it closes; `tunnel`: the origin of an intercepted CONNECT."""
        conn = ServerConnection(stream, self.limits, peer)
        ctx = ConnectionContext(self, peer, tunnel)
        self.connections.add(conn)
        try:
            while not self.stopping:
                try:
                    request = await conn.next_request()
                except HttpError as exc:
                    log("http.bad_request", level="warning", client=peer, status=exc.status, error=exc.message)
                    await conn.send_error(exc)
                    return
                if request is None:
                    return
                if request.method == "CONNECT":
                    if self.tunnels is None or tunnel is not None:
                        await conn.send_error(HttpError(405, "CONNECT is for a forward proxy ([[http]] without upstream)"))
                        return
                    await self.tunnels.connect(conn, request, peer)
                    return
                routed = self._route(request, tunnel)
                if isinstance(routed, HttpError):
                    await conn.send_error(routed)
                else:
                    await Exchange(self, conn, request, routed[0], routed[1], ctx).run()
                if not conn.reusable:
                    return
        except ClientGone:
            return
        finally:
            self.connections.discard(conn)
            ctx.close(conn)

    def _route(self, request: Request, tunnel: Origin | None) -> tuple[Origin, str] | HttpError:
        target = request.target
        if tunnel is not None:
            return tunnel, target if target.startswith("/") else Origin.parse(target)[1]
        if self.upstream is not None:
            origin, prefix = self.upstream
            if not target.startswith("/"):
                return HttpError(400, "this is a reverse proxy: send origin-form requests (GET /path)")
            return origin, prefix + target
        if not target.startswith(("http://", "https://")):
            return HttpError(400, "this is a forward proxy: send absolute-form requests (GET http://host/path) "
                                  "or CONNECT host:port")
        try:
            origin, path = Origin.parse(target)
        except ValueError as exc:
            return HttpError(400, str(exc))
        if not self.tunnels.listed(origin.host) and self.settings.unlisted == "refuse":
            return HttpError(403, f"wireproxy does not forward to {origin.host} (not in intercept)", type="blocked")
        return origin, path
