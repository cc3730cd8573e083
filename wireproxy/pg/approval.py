"""A statement held for a human, from the pumps' side.

The relay holds the statement (and the client's input after it) and asks, with an AwaitApproval
action, for this to run as a task of the session: check the user's window grants, submit the
request to the broker, tell the client the approval id (again every `notice_interval` seconds,
so psql and drivers show life), wait without polling, and hand the outcome back to the relay,
which then runs the statement or fails it as the server would. A CancelRequest for the session
(`cancel`) or the client going away withdraws the request.
"""

from __future__ import annotations

import trio

from ..approvals import ApprovalRequest, ApprovalUnavailable
from ..policy import fingerprint
from ..telemetry.logs import log
from .protocol import AwaitApproval

CANCELLED = "canceling statement due to user request"


class ApprovalWait:
    def __init__(self, session, broker):
        self.session = session
        self.broker = broker
        self.ticket = None
        self._cancelled = trio.Event()

    async def run(self, action: AwaitApproval) -> None:
        session, relay = self.session, self.session.relay
        decision, sql = action.decision, action.statement
        user = session.user
        grant = self.broker.window_grant(user, fingerprint(sql))
        if grant is not None:                        # approved for a while: no need to ask
            session.record(grant.record())
            relay.approval_decided(True)
            return await session.deliver()
        statement = relay.masks.mask_text(sql) if relay.masks is not None else sql
        request = ApprovalRequest(user, relay.startup.database, statement, decision.rule_id or "",
                                  tuple(decision.approvers), decision.approval_timeout, fingerprint(sql),
                                  "postgres", session.session_id, session.peer)
        try:
            self.ticket = await self.broker.submit(request, on_event=session.record)
        except ApprovalUnavailable as exc:
            log("approval.unavailable", level="error", client=session.peer, error=str(exc))
            relay.approval_decided(False, f"blocked by wireproxy rule {decision.rule_id}: "
                                          f"approval unavailable ({exc})")
            return await session.deliver()
        try:
            await self._wait()
        finally:
            if not self.ticket.done:                 # the client went away, or we were cancelled
                self.ticket.withdraw()
            self.ticket = None
        await session.deliver()

    async def _wait(self) -> None:
        relay, session, ticket = self.session.relay, self.session, self.ticket
        outcome = None
        while outcome is None and not self._cancelled.is_set():
            relay.approval_pending(ticket.id)
            await session.deliver()
            with trio.move_on_after(self.broker.notice_interval):
                outcome = await self._outcome_unless_cancelled()
        if outcome is None:                          # the client cancelled: as PostgreSQL says it
            ticket.withdraw(CANCELLED)
            relay.approval_decided(False, CANCELLED, "57014")
        else:
            relay.approval_decided(outcome.approved, outcome.message)

    async def _outcome_unless_cancelled(self):
        async with trio.open_nursery() as waiting:
            waiting.start_soon(self._watch_cancel, waiting.cancel_scope)
            outcome = await self.ticket.wait()
            waiting.cancel_scope.cancel()
            return outcome

    async def _watch_cancel(self, scope: trio.CancelScope) -> None:
        await self._cancelled.wait()
        scope.cancel()

    def cancel(self) -> bool:
        """A CancelRequest for this session: True when it withdrew a waiting request (then
        nothing runs upstream to be cancelled)."""
        if self.ticket is None or self.ticket.done:
            return False
        self._cancelled.set()
        return True
