"""`action = "approve"` on HTTP and MCP: held through the approval broker the server is given
(a scripted broker here, speaking the interface wireproxy.http.approval defines), refused 403
when no broker is configured."""

from __future__ import annotations

from dataclasses import dataclass

import openai
import pytest
import trio

from fakellm import FakeLLM
from httpkit import in_thread, running_proxy

RULES = '''
[[rule]]
id = "orders-need-approval"
action = "approve"
patterns = ["ORD-[0-9]{8}"]
message = "order data leaves only with approval"

[[mask]]
id = "pii"
detectors = ["email"]
'''


@dataclass
class Outcome:
    approved: bool
    approver: str = "bob"
    reason: str = ""
    timed_out: bool = False


class ScriptedBroker:
    def __init__(self, approve: bool):
        self.approve = approve
        self.requests = []

    async def submit(self, request):
        self.requests.append(request)
        broker = self

        class Ticket:
            withdrawn = False

            async def wait(self):
                await trio.sleep(0.05)
                return Outcome(broker.approve, reason="" if broker.approve else "not today")

            def withdraw(self):
                self.withdrawn = True
        return Ticket()


def _ask(port):
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
    return client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "ship ORD-12345678 to alice@example.com"}])


@pytest.mark.parametrize("approve", [True, False])
async def test_held_request_follows_the_broker(tmp_path, approve):
    broker = ScriptedBroker(approve)
    with FakeLLM("done") as upstream:
        log = f'[log]\ndir = "{tmp_path / "logs"}"\nkey_file = "{tmp_path / "wireproxy.key"}"\n'
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"', rules=RULES, approvals=broker,
                                 top=log) as (_, port):
            if approve:
                answer = await in_thread(_ask, port)
                assert answer.choices[0].message.content == "done"
                assert len(upstream.seen) == 1
            else:
                def denied():
                    with pytest.raises(openai.PermissionDeniedError) as err:
                        _ask(port)
                    return err.value
                error = await in_thread(denied)
                assert "denied by bob: not today" in error.message
                assert upstream.seen == []
    (request,) = broker.requests
    assert request.rule_id == "orders-need-approval" and request.source == "http"
    assert "ORD-12345678" in request.statement and "alice@example.com" not in request.statement
    assert (tmp_path / "logs" / f"{request.session_id}.wpl").exists()       # the session it was held in


async def test_approve_without_broker_fails_closed(tmp_path):
    with FakeLLM("done") as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"', rules=RULES) as (_, port):
            def call():
                with pytest.raises(openai.PermissionDeniedError) as err:
                    _ask(port)
                return err.value
            error = await in_thread(call)
        assert upstream.seen == []
    assert "no approval broker is configured" in error.message


@pytest.mark.parametrize("approve", [True, False])
async def test_held_through_the_real_broker(tmp_path, approve):
    """With the admin API on, the server's own broker holds HTTP requests until someone decides."""
    with FakeLLM("done") as upstream:
        admin = '[admin]\nlisten = "127.0.0.1:0"\n'
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"', rules=RULES, top=admin) as (server, port):
            async def decide():
                while not (pending := await server.broker.approvals("pending")):
                    await trio.sleep(0.02)
                (held,) = pending
                assert held.request.source == "http" and held.request.rule_id == "orders-need-approval"
                if approve:
                    await server.broker.approve(held.id, "bob")
                else:
                    await server.broker.deny(held.id, "bob", "not today")

            def call():
                if approve:
                    return _ask(port).choices[0].message.content
                with pytest.raises(openai.PermissionDeniedError) as err:
                    _ask(port)
                return err.value.message
            async with trio.open_nursery() as nursery:
                nursery.start_soon(decide)
                got = await in_thread(call)
        assert len(upstream.seen) == (1 if approve else 0)
    assert got == "done" if approve else "denied by bob: not today" in got
