"""One client connection on the server side of h11: requests in, responses out, with limits.

    conn = ServerConnection(stream, limits, peer)
    while (request := await conn.next_request()) is not None:   # head and whole body read
        await conn.send_head(200, headers); await conn.send_data(b"..."); await conn.send_end()

Limits (slowloris and size): the idle wait for a next request is `idle_timeout`; once its
first byte arrives the whole head must come within `header_timeout` and fit in
`max_header_bytes`; the body must come within `body_timeout` and fit in `max_body_bytes`
(a declared Content-Length over the cap is refused before a byte of it is read). Breaking one
raises HttpError (408, 413, 431, 400); the caller answers it and the connection closes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus

import h11
import trio

from .errors import REASONS, HttpError

READ_SIZE = 65536


@dataclass
class Limits:
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 32 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = 60.0


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    http_version: str = "1.1"
    received_at: float = 0.0          # trio.current_time() when the body was complete
    extra: dict = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class ClientGone(Exception):
    """The client closed or broke the connection."""


class ServerConnection:
    def __init__(self, stream: trio.abc.Stream, limits: Limits, peer: str):
        self.stream = stream
        self.limits = limits
        self.peer = peer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self.response_started = False
        self._held = b""                  # a response head waiting for its first body bytes
        self.idle_scope: trio.CancelScope | None = None   # set while waiting for a next request
        self.bytes_in = 0
        self.bytes_out = 0

    async def _receive(self, deadline: float | None, on_timeout: HttpError | None) -> bool:
        """More bytes into h11; False on a timeout with no error to give (idle close)."""
        try:
            with trio.fail_at(deadline) if deadline is not None else _nothing():
                data = await self.stream.receive_some(READ_SIZE)
        except trio.TooSlowError:
            if on_timeout is None:
                return False
            raise on_timeout from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            raise ClientGone() from None
        self.bytes_in += len(data)
        self.h11.receive_data(data)
        return True

    async def next_request(self) -> Request | None:
        """The next request, body included; None when the client is done or went idle."""
        h = self.h11
        if h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
            self.response_started = False
        elif h.our_state is not h11.IDLE or h.their_state is not h11.IDLE:
            return None
        head_deadline: float | None = None
        idle_deadline = trio.current_time() + self.limits.idle_timeout
        while True:
            event = self._next_event()
            if isinstance(event, h11.Request):
                break
            if event is h11.NEED_DATA:
                if head_deadline is None and h.trailing_data[0]:
                    head_deadline = trio.current_time() + self.limits.header_timeout
                if head_deadline is None:
                    with trio.CancelScope() as idle:     # shutdown cancels a connection at rest
                        self.idle_scope = idle
                        got = await self._receive(idle_deadline, None)
                    self.idle_scope = None
                    if idle.cancelled_caught or not got:
                        return None
                    if h.trailing_data[0]:
                        head_deadline = trio.current_time() + self.limits.header_timeout
                else:
                    await self._receive(head_deadline, HttpError(
                        408, f"request headers not received within {self.limits.header_timeout:g} s"))
                continue
            return None                                    # ConnectionClosed / Paused
        head_size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
        if head_size > self.limits.max_header_bytes:     # h11 caps only a head still incomplete
            raise HttpError(431, f"request head over the limit of {self.limits.max_header_bytes} bytes")
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers]
        request = Request(event.method.decode("ascii", "replace"), event.target.decode("latin-1"),
                          headers, http_version=event.http_version.decode("ascii"))
        request.body = await self._read_body(request)
        request.received_at = trio.current_time()
        return request

    async def _read_body(self, request: Request) -> bytes:
        cap = self.limits.max_body_bytes
        declared = request.header("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise HttpError(413, f"request body of {declared} bytes is over the limit of {cap} bytes")
        body = bytearray()
        if self.h11.they_are_waiting_for_100_continue:
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        deadline = trio.current_time() + self.limits.body_timeout
        timeout = HttpError(408, f"request body not received within {self.limits.body_timeout:g} s")
        while True:
            event = self._next_event()
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > cap:
                    raise HttpError(413, f"request body is over the limit of {cap} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            elif event is h11.NEED_DATA:
                await self._receive(deadline, timeout)
            else:
                raise ClientGone()

    def _next_event(self):
        try:
            return self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            if "incomplete event" in str(exc) or "too long" in str(exc).lower():
                status = 431
            raise HttpError(status, f"malformed request: {exc}") from None

    async def _send(self, event) -> None:
        data = self.h11.send(event)
        if self._held:
            data, self._held = self._held + (data or b""), b""
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                raise ClientGone() from None
            self.bytes_out += len(data)

    async def send_head(self, status: int, headers: list[tuple[str, str]], *, hold: bool = False) -> None:
        """`hold`: keep the head to go out with the first body bytes (one write), until flush()."""
        self.response_started = True
        response = h11.Response(status_code=status, headers=headers, reason=_reason(status))
        if hold:
            self._held += self.h11.send(response)
        else:
            await self._send(response)

    async def flush(self) -> None:
        if self._held:
            data, self._held = self._held, b""
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                raise ClientGone() from None
            self.bytes_out += len(data)

    async def send_data(self, data: bytes) -> None:
        if data:
            await self._send(h11.Data(data=data))

    async def send_end(self) -> None:
        await self._send(h11.EndOfMessage())

    async def send_whole(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        await self.send_head(status, headers + [("content-length", str(len(body)))], hold=True)
        if body:
            self._held += self.h11.send(h11.Data(data=body))
        await self.send_end()

    async def send_error(self, error: HttpError, extra_headers: list[tuple[str, str]] = ()) -> None:
        """The error as JSON, unless a response has begun (then the connection is cut)."""
        if self.h11.our_state is h11.IDLE or self.h11.our_state is h11.ERROR and not self.response_started:
            await self._send_raw_error(error)       # no request head to answer through h11
            return
        if self.response_started or self.h11.our_state is not h11.SEND_RESPONSE:
            raise ClientGone()
        headers = [("content-type", "application/json"), *error.headers, *extra_headers]
        if error.status in (400, 408, 413, 431) or self.h11.their_state is not h11.DONE:
            headers.append(("connection", "close"))
        await self.send_whole(error.status, headers, error.body())

    async def _send_raw_error(self, error: HttpError) -> None:
        body = error.body()
        head = (f"HTTP/1.1 {error.status} {_reason(error.status).decode()}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode("latin-1")
        self.response_started = True
        try:
            await self.stream.send_all(head + body)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            raise ClientGone() from None
        self.bytes_out += len(head) + len(body)

    async def watch_for_close(self, gone: trio.Event) -> None:
        """Sets `gone` when the client closes while we hold its request (bytes it sends meanwhile,
        a pipelined request, are kept for later)."""
        while True:
            try:
                data = await self.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                gone.set()
                return
            self.bytes_in += len(data)
            self.h11.receive_data(data)

    @property
    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return REASONS.get(status, "").encode()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
