"""A small HTTP/1.1 server loop on h11 for the admin API: requests in, one handler, responses out.

Bounded everywhere a client could make it wait or buffer: headers (16 KiB), body (64 KiB),
the time to send a request, or for a kept-alive connection to sit idle (`timeout`).
A protocol error gets a 400 and the connection closes; the listener and other clients go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import h11
import trio

MAX_HEADERS = 16 * 1024
MAX_BODY = 64 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client: str = ""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, document: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(document, ensure_ascii=False, indent=None, separators=(",", ":")).encode("utf-8") + b"\n"
    return Response(status, body, "application/json", headers or [])


def error_response(status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


Handler = Callable[[Request], Awaitable[Response]]


class _TooLarge(Exception):
    pass


async def serve_connection(stream: trio.abc.Stream, handler: Handler, client: str = "", *,
                           timeout: float = 30.0) -> None:
    """Serve requests on one connection (kept alive) until it closes or sits idle `timeout` s."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
    try:
        while True:
            with trio.move_on_after(timeout) as scope:
                request = await _read_request(conn, stream, client)
            if scope.cancelled_caught or request is None:
                return
            response = await handler(request)
            await _send(conn, stream, response)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except _TooLarge:
        await _send_error(conn, stream, error_response(413, "too_large", f"request body over {MAX_BODY} bytes"))
    except h11.RemoteProtocolError as exc:
        await _send_error(conn, stream, error_response(exc.error_status_hint, "bad_request",
                                                       "malformed HTTP request"))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await trio.aclose_forcefully(stream)


async def _read_request(conn: h11.Connection, stream, client: str) -> Request | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            head = event
            declared = dict(event.headers).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
                raise _TooLarge()
            if conn.they_are_waiting_for_100_continue:
                await stream.send_all(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise _TooLarge()
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            target = urlsplit(head.target.decode("ascii", "replace"))
            query = {k: v[-1] for k, v in parse_qs(target.query).items()}
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
            return Request(head.method.decode("ascii", "replace"), target.path, query, headers, bytes(body), client)


async def _send(conn: h11.Connection, stream, response: Response) -> None:
    headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body))),
               ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), *response.headers]
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    data += conn.send(h11.Data(data=response.body)) + conn.send(h11.EndOfMessage())
    await stream.send_all(data)


async def _send_error(conn: h11.Connection, stream, response: Response) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    response.headers.append(("Connection", "close"))
    try:
        await _send(conn, stream, response)
    except (h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
