"""Webhook notifications of new approval requests: a JSON POST, retried, never in the way.

`WebhookNotifier.notify(payload)` is sync and returns at once: the payload is queued and a few
worker tasks deliver it, each try bounded by `timeout`, failed tries repeated `retries` times
with a doubling pause. A held session never waits for a webhook. The statement travels as a
JSON string (escaped by the encoder), never as markup a receiver would render.

`post_json(url, payload, timeout)` is the one HTTP call (h11 over trio, http or https); it is
kept behind that one function so a shared upstream client can replace it.
"""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import urlsplit

import h11
import trio

from .. import __version__
from ..telemetry import metrics
from ..telemetry.logs import log

MAX_RESPONSE = 64 * 1024


class WebhookError(Exception):
    pass


async def post_json(url: str, payload: Any, *, timeout: float = 5.0) -> int:
    """POST `payload` as JSON to `url`; the response status, or WebhookError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    request = h11.Request(method="POST", target=target, headers=[
        ("Host", host_header), ("User-Agent", f"wireproxy/{__version__}"),
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
        ("Connection", "close")])
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(parts.hostname, port)
            try:
                if parts.scheme == "https":
                    stream = trio.SSLStream(stream, ssl.create_default_context(), server_hostname=parts.hostname)
                return await _exchange(stream, request, body)
            finally:
                await trio.aclose_forcefully(stream)
    except trio.TooSlowError:
        raise WebhookError(f"no answer within {timeout:g}s") from None
    except (OSError, trio.BrokenResourceError, ssl.SSLError, h11.ProtocolError) as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}") from None


async def _exchange(stream, request: h11.Request, body: bytes) -> int:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE)
    await stream.send_all(conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            return event.status_code            # the body is not needed: the status says it all
        if isinstance(event, h11.ConnectionClosed):
            raise WebhookError("the server closed the connection without an answer")


class WebhookNotifier:
    def __init__(self, url: str, *, timeout: float = 5.0, retries: int = 3, backoff: float = 1.0,
                 workers: int = 4, queue_size: int = 1000):
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.workers = workers
        self._send, self._receive = trio.open_memory_channel(queue_size)

    def notify(self, payload: dict[str, Any]) -> None:
        try:
            self._send.send_nowait(payload)
        except trio.WouldBlock:
            metrics.WEBHOOK_DELIVERIES.inc(result="dropped")
            log("webhook.dropped", level="error", id=payload.get("id"), note="the webhook queue is full")

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self.workers):
                nursery.start_soon(self._work)
            task_status.started()

    async def _work(self) -> None:
        async for payload in self._receive:
            await self.deliver(payload)

    async def deliver(self, payload: dict[str, Any]) -> bool:
        pause = self.backoff
        for attempt in range(1, self.retries + 2):
            try:
                status = await post_json(self.url, payload, timeout=self.timeout)
                problem = None if 200 <= status < 300 else f"HTTP {status}"
            except WebhookError as exc:
                problem = str(exc)
            if problem is None:
                metrics.WEBHOOK_DELIVERIES.inc(result="delivered")
                log("webhook.delivered", id=payload.get("id"), attempt=attempt)
                return True
            log("webhook.failed", level="warning", id=payload.get("id"), attempt=attempt, error=problem,
                retrying=attempt <= self.retries)
            if attempt <= self.retries:
                await trio.sleep(pause)
                pause *= 2
        metrics.WEBHOOK_DELIVERIES.inc(result="failed")
        return False
