"""Webhooks for new approval requests, received by a local HTTP server (the standard library's,
in a thread): retries after a failure, gives up after its retries, never holds up a submit,
and carries the statement as JSON data."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trio

from wireproxy.approvals import ApprovalRequest, Broker
from wireproxy.approvals.webhook import WebhookNotifier
from wireproxy.telemetry import metrics

NASTY = 'DELETE FROM t WHERE note = \'"}]</script><img src=x onerror=alert(1)>\' -- *bold* <@here> \u202e'


class Receiver:
    """Answers POSTs with the statuses given, in order (the last one repeats)."""

    def __init__(self, statuses: list[int]):
        self.statuses = statuses
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses[min(len(receiver.received), len(receiver.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/approvals?team=dba"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


async def wait_until(predicate, timeout: float = 20.0):
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


def request(statement: str = NASTY) -> ApprovalRequest:
    return ApprovalRequest("alice", "billing", statement, "ask-deletes", ("bob",), None, "delete from t where note = ?")


async def test_the_webhook_is_retried_after_a_failure_and_carries_the_request(nursery):
    with Receiver([500, 200]) as receiver:
        delivered = metrics.WEBHOOK_DELIVERIES.value(result="delivered")
        broker = Broker(notifier=WebhookNotifier(receiver.url, retries=3, backoff=0.01),
                        admin_url="http://127.0.0.1:6480/")
        await nursery.start(broker.run)
        ticket = await broker.submit(request())
        await wait_until(lambda: metrics.WEBHOOK_DELIVERIES.value(result="delivered") == delivered + 1)
        assert len(receiver.received) == 2
        (headers, first), (_, second) = receiver.received
        assert first == second and headers["Content-Type"] == "application/json"
        payload = json.loads(second)
        assert payload["statement"] == NASTY                       # the exact text, as data
        assert b"<script>" not in second.replace(b"</script>", b"")  # and nothing else added around it
        assert (payload["id"], payload["user"], payload["database"], payload["rule"]) == \
            (ticket.id, "alice", "billing", "ask-deletes")
        assert payload["approve"]["cli"] == f"wireproxy approvals approve {ticket.id}"
        assert payload["approve"]["api"] == f"http://127.0.0.1:6480/approvals/{ticket.id}/approve"
        assert payload["approvers"] == ["bob"]


async def test_the_webhook_gives_up_after_its_retries(nursery):
    with Receiver([503]) as receiver:
        failed = metrics.WEBHOOK_DELIVERIES.value(result="failed")
        broker = Broker(notifier=WebhookNotifier(receiver.url, retries=2, backoff=0.01))
        await nursery.start(broker.run)
        ticket = await broker.submit(request("SELECT 1"))
        await wait_until(lambda: metrics.WEBHOOK_DELIVERIES.value(result="failed") == failed + 1)
        assert len(receiver.received) == 3                          # one try and two retries
        await broker.approve(ticket.id, "bob")                     # the request itself is unaffected
        assert (await ticket.wait()).approved


async def test_a_hanging_webhook_never_holds_up_the_request(nursery):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)                                               # accepts, never answers
    try:
        failed = metrics.WEBHOOK_DELIVERIES.value(result="failed")
        delivered = metrics.WEBHOOK_DELIVERIES.value(result="delivered")
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        notifier = WebhookNotifier(url, timeout=600, retries=0)
        broker = Broker(notifier=notifier)
        await nursery.start(broker.run)
        ticket = await broker.submit(request("SELECT 2"))
        await broker.approve(ticket.id, "bob")
        assert (await ticket.wait()).approved
        # The whole request came and went while the webhook still waits for its answer.
        assert metrics.WEBHOOK_DELIVERIES.value(result="failed") == failed
        assert metrics.WEBHOOK_DELIVERIES.value(result="delivered") == delivered
    finally:
        silent.close()


async def test_each_try_is_bounded_by_the_timeout(nursery):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        notifier = WebhookNotifier(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.2, retries=1,
                                   backoff=0.01)
        assert await notifier.deliver({"id": "ap-x"}) is False
    finally:
        silent.close()


async def test_a_full_queue_drops_with_a_count_not_a_wait(nursery):
    dropped = metrics.WEBHOOK_DELIVERIES.value(result="dropped")
    notifier = WebhookNotifier("http://127.0.0.1:9/", queue_size=1)   # not started: nothing drains it
    notifier.notify({"id": "a"})
    notifier.notify({"id": "b"})
    assert metrics.WEBHOOK_DELIVERIES.value(result="dropped") == dropped + 1


@pytest.mark.parametrize("url", ["ftp://example.com/", "http://", "not a url"])
async def test_bad_urls_fail_cleanly(url):
    from wireproxy.approvals.webhook import WebhookError, post_json
    with pytest.raises(WebhookError):
        await post_json(url, {}, timeout=1)
