"""An HTTP/1.1 client on h11 and trio, for every request wireproxy sends upstream.

    client = HttpClient(connect_timeout=10, read_timeout=300)
    async with client.request(Origin.parse(url), "POST", "/v1/chat", headers, body) as response:
        response.status, response.headers
        async for chunk in response.chunks():   # streamed as it arrives, never buffered whole
            ...

Connections are kept alive and reused per origin (scheme, host, port), up to `max_idle` idle
ones each, dropped after `idle_timeout` seconds. TLS verifies the peer against the system
store (which honours SSL_CERT_FILE) or the `ssl_context` given. A connection that was reused
and failed before any response byte arrived is retried once on a fresh one (the keep-alive
race: the server closed it as we sent). Failures raise UpstreamError with the status the
client should see: 502 (cannot connect, TLS failure, connection lost, bad response), 504 (no
response in time).
"""

from __future__ import annotations

import ssl
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterable, AsyncIterator
from urllib.parse import urlsplit

import h11
import trio

READ_SIZE = 65536


class UpstreamError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> tuple["Origin", str]:
        """"https://api.x.com:8443/v1?a=1" -> (Origin, "/v1?a=1")."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(parts.scheme, parts.hostname, port), path

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}"


class _Connection:
    __slots__ = ("stream", "h11", "origin", "idle_since", "reused")

    def __init__(self, stream: trio.abc.Stream, origin: Origin):
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=256 * 1024)
        self.origin = origin
        self.idle_since = 0.0
        self.reused = False


class Response:
    def __init__(self, conn: _Connection, head: h11.Response, client: "HttpClient"):
        self._conn = conn
        self._client = client
        self.status: int = head.status_code
        self.reason: bytes = head.reason
        self.headers: list[tuple[bytes, bytes]] = list(head.headers)
        self.http_version = head.http_version
        self.complete = False
        self.sent_at = self.head_at = 0.0       # trio clock: request sent, response head read

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def chunks(self, on_wait=None) -> AsyncIterator[bytes]:
        """The body as it arrives; `on_wait()` is awaited before each wait on the network (the
        caller flushes what it holds back to batch writes)."""
        while not self.complete:
            event = await self._client._next_event(self._conn, on_wait)
            if isinstance(event, h11.Data):
                if event.data:
                    yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True
            else:
                raise UpstreamError(502, f"upstream {self._conn.origin} sent an unexpected {type(event).__name__}")

    async def read(self, limit: int) -> bytes:
        out = bytearray()
        async for chunk in self.chunks():
            out += chunk
            if len(out) > limit:
                raise UpstreamError(502, f"upstream response larger than {limit} bytes")
        return bytes(out)


class HttpClient:
    def __init__(self, *, connect_timeout: float = 10.0, read_timeout: float = 300.0,
                 ssl_context: ssl.SSLContext | None = None, max_idle: int = 16, idle_timeout: float = 60.0):
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ssl_context = ssl_context
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._idle: dict[Origin, list[_Connection]] = {}

    def _ssl(self) -> ssl.SSLContext:
        if self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()   # honours SSL_CERT_FILE
        return self.ssl_context

    @asynccontextmanager
    async def request(self, origin: Origin, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes | AsyncIterable[bytes] = b"") -> AsyncIterator[Response]:
        response = await self._send(origin, method, target, headers, body)
        try:
            yield response
        finally:
            await self._finish(response)

    async def _send(self, origin, method, target, headers, body) -> Response:
        retry = isinstance(body, (bytes, bytearray))
        while True:
            conn = self._take_idle(origin) or await self._connect(origin)
            try:
                return await self._exchange(conn, method, target, headers, body)
            except UpstreamError:
                await trio.aclose_forcefully(conn.stream)
                if not (retry and conn.reused):
                    raise
                retry = False

    async def _exchange(self, conn: _Connection, method, target, headers, body) -> Response:
        names = {k.lower() for k, _ in headers}
        head = list(headers)
        if "host" not in names:
            head.insert(0, ("host", conn.origin.host_header))
        if isinstance(body, (bytes, bytearray)):
            if "content-length" not in names and "transfer-encoding" not in names and (body or method not in ("GET", "HEAD")):
                head.append(("content-length", str(len(body))))
        elif "content-length" not in names:
            head.append(("transfer-encoding", "chunked"))
        request = h11.Request(method=method, target=target, headers=head)
        if isinstance(body, (bytes, bytearray)):     # one write: each send costs a wakeup upstream
            await self._write(conn, request, h11.Data(data=body) if body else None, h11.EndOfMessage())
        else:
            await self._write(conn, request)
            async for chunk in body:
                if chunk:
                    await self._write(conn, h11.Data(data=chunk))
            await self._write(conn, h11.EndOfMessage())
        sent_at = trio.current_time()
        while True:
            event = await self._next_event(conn)
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                response = Response(conn, event, self)
                response.sent_at, response.head_at = sent_at, trio.current_time()
                return response
            raise UpstreamError(502, f"upstream {conn.origin} closed the connection without a response")

    async def _write(self, conn: _Connection, *events) -> None:
        try:
            data = b"".join(conn.h11.send(event) or b"" for event in events if event is not None)
            if data:
                with trio.fail_after(self.read_timeout):
                    await conn.stream.send_all(data)
        except trio.TooSlowError:
            raise UpstreamError(504, f"upstream {conn.origin} did not take the request in time") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise UpstreamError(502, f"lost the connection to upstream {conn.origin} ({type(exc).__name__})") from None
        except h11.LocalProtocolError:
            # h11's message quotes the offending header value, which may be a key: not repeated
            raise UpstreamError(502, "cannot send this request upstream: a header h11 refuses") from None

    async def _next_event(self, conn: _Connection, on_wait=None):
        while True:
            try:
                event = conn.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpstreamError(502, f"upstream {conn.origin} sent a malformed response: {exc}") from None
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed):
                    raise UpstreamError(502, f"upstream {conn.origin} closed the connection mid-response")
                return event
            if on_wait is not None:
                await on_wait()
            try:
                with trio.fail_after(self.read_timeout):
                    data = await conn.stream.receive_some(READ_SIZE)
            except trio.TooSlowError:
                raise UpstreamError(504, f"upstream {conn.origin} did not answer within "
                                         f"{self.read_timeout:g} s") from None
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise UpstreamError(502, f"lost the connection to upstream {conn.origin} ({type(exc).__name__})") from None
            conn.h11.receive_data(data)

    async def _connect(self, origin: Origin) -> _Connection:
        try:
            with trio.fail_after(self.connect_timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(origin.host, origin.port)
                if origin.scheme == "https":
                    tls = trio.SSLStream(stream, self._ssl(), server_hostname=origin.host, https_compatible=True)
                    try:
                        await tls.do_handshake()
                    except BaseException:
                        await trio.aclose_forcefully(stream)
                        raise
                    stream = tls
        except trio.TooSlowError:
            raise UpstreamError(504, f"cannot reach upstream {origin}: connect timed out") from None
        except trio.BrokenResourceError as exc:
            cause = exc.__cause__
            detail = getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or str(cause or exc)
            raise UpstreamError(502, f"TLS with upstream {origin} failed: {detail}") from None
        except OSError as exc:
            raise UpstreamError(502, f"cannot reach upstream {origin}: {exc.strerror or exc}") from None
        return _Connection(stream, origin)

    def _take_idle(self, origin: Origin) -> _Connection | None:
        pool = self._idle.get(origin)
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if now - conn.idle_since < self.idle_timeout:
                conn.reused = True
                return conn
            trio.lowlevel.spawn_system_task(trio.aclose_forcefully, conn.stream)
        return None

    async def _finish(self, response: Response) -> None:
        conn = response._conn
        h = conn.h11
        if response.complete and h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
            pool = self._idle.setdefault(conn.origin, [])
            if len(pool) < self.max_idle:
                conn.idle_since = time.monotonic()
                pool.append(conn)
                return
        await trio.aclose_forcefully(conn.stream)

    async def aclose(self) -> None:
        for pool in self._idle.values():
            for conn in pool:
                await trio.aclose_forcefully(conn.stream)
        self._idle.clear()
