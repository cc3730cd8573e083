"""The approval broker as the HTTP side sees it (the broker itself lives in wireproxy/approvals).

A request or tool call whose decision is `approve` is held: submitted, then waited on; if the
client goes away first the ticket is withdrawn. With no broker configured an approve decision
is answered 403 (fail closed). The request type is the broker's own (wireproxy.approvals).
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import trio

from wireproxy.approvals import ApprovalRequest, ApprovalUnavailable
from wireproxy.policy import Decision


class Outcome(Protocol):
    approved: bool
    approver: Any
    reason: Any
    timed_out: bool


class Ticket(Protocol):
    async def wait(self) -> Outcome: ...
    def withdraw(self) -> None: ...


class Approvals(Protocol):
    async def submit(self, request: ApprovalRequest) -> Ticket: ...


DEFAULT_TIMEOUT = 300.0
NO_BROKER = "approval required by wireproxy rule {rule}, but no approval broker is configured"


async def hold(approvals: Approvals | None, request: ApprovalRequest, client_gone: trio.Event | None = None
               ) -> tuple[bool, str]:
    """(approved, why): waits on the broker; a client that goes away withdraws the ticket."""
    if approvals is None:
        return False, NO_BROKER.format(rule=request.rule_id)
    try:
        ticket = await approvals.submit(request)
    except ApprovalUnavailable as exc:            # cannot be held: it must not go on
        return False, f"blocked by wireproxy rule {request.rule_id}: approval unavailable ({exc})"
    outcome = None
    async with trio.open_nursery() as nursery:
        async def wait_outcome():
            nonlocal outcome
            outcome = await ticket.wait()
            nursery.cancel_scope.cancel()

        async def watch_client():
            await client_gone.wait()
            ticket.withdraw()
            nursery.cancel_scope.cancel()

        nursery.start_soon(wait_outcome)
        if client_gone is not None:
            nursery.start_soon(watch_client)
    if outcome is None:
        return False, "the client went away while waiting for approval"
    if outcome.approved:
        return True, f"approved by {outcome.approver}"
    if outcome.timed_out:
        return False, f"blocked by wireproxy rule {request.rule_id}: approval timed out"
    why = f": {outcome.reason}" if outcome.reason else ""
    return False, f"blocked by wireproxy rule {request.rule_id}: denied by {outcome.approver}{why}"


def fingerprint(source: str, rule_id: str | None, statement: str) -> str:
    """What a time-window grant matches: the same rule and the same (masked) text."""
    return f"{source}:{rule_id}:{hashlib.sha256(statement.encode('utf-8', 'replace')).hexdigest()[:32]}"


def approvers_of(decision: Decision) -> tuple[str, ...]:
    return tuple(getattr(decision, "approvers", None) or ())
