"""The approval broker: the proxies submit held statements, people decide through the admin API.

    ticket = await broker.submit(ApprovalRequest(...), on_event=recorder.record)
    outcome = await ticket.wait()        # wakes on approve, deny or timeout: no polling
    ticket.withdraw()                    # the client cancelled or went away
    broker.window_grant(user, fingerprint)   # sync, O(1): a live window grant, or None

A ticket is held by the broker that took it (this process); its record lives in the store, so
another instance may decide it (PostgreSQL store): the decision comes back through the store's
notification and releases the ticket here. Timeouts are trio deadlines on the waiting task.
Every event of a ticket (requested, approved, denied, timed_out, withdrawn) goes to the
structured log and, as a session-log record (`type = "approval"`), to the ticket's `on_event`.
Run the broker as a service (`await nursery.start(broker.run)`) before submitting.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any, Callable

import trio

from ..telemetry import metrics
from ..telemetry.logs import log
from .model import (APPROVED, DEFAULT_TIMEOUT, DENIED, ONCE, TIMED_OUT, WINDOW, WITHDRAWN,
                    AlreadyDecided, Approval, ApprovalError, ApprovalRequest, ApprovalUnavailable,
                    Grant, Outcome, UnknownApproval, check_approver, format_duration, iso,
                    parse_duration)
from .store import MemoryStore, Store

MAX_NAME = 200
MAX_REASON = 2000
STORE_DEADLINE = 10.0       # a store write the broker must make (timeout, withdraw) gives up here


def new_id() -> str:
    """A handle short enough to type and print in a NoticeResponse, 60 random bits."""
    return "ap-" + base64.b32encode(secrets.token_bytes(8)).decode("ascii").lower()[:12]


class Ticket:
    """One held statement, as its holder sees it."""

    def __init__(self, broker: "Broker", approval: Approval, deadline: float,
                 on_event: Callable[[dict], None] | None):
        self.id = approval.id
        self.approval = approval
        self.deadline = deadline                 # trio time
        self._broker = broker
        self._on_event = on_event
        self._decided = trio.Event()
        self._outcome: Outcome | None = None

    @property
    def request(self) -> ApprovalRequest:
        return self.approval.request

    @property
    def done(self) -> bool:
        return self._outcome is not None

    async def wait(self) -> Outcome:
        if self._outcome is None:
            with trio.move_on_at(self.deadline):
                await self._decided.wait()
            if self._outcome is None:
                await self._broker._time_out(self)
        return self._outcome

    def withdraw(self, reason: str = "the client cancelled or went away") -> None:
        """The request leaves the pending list; a later wait() returns a withdrawn outcome."""
        if self._outcome is None:
            self._broker._withdraw(self, reason)

    def _resolve(self, approval: Approval) -> bool:
        if self._outcome is not None:
            return False
        self.approval = approval
        self._outcome = approval.outcome()
        self._decided.set()
        return True


class Broker:
    def __init__(self, store: Store | None = None, *, default_timeout: float = DEFAULT_TIMEOUT,
                 max_window: float = 86400.0, notice_interval: float = 10.0, notifier=None,
                 admin_url: str | None = None, groups_of: Callable[[str], frozenset] | None = None,
                 clock: Callable[[], float] = time.time):
        self.store = store if store is not None else MemoryStore()
        self.default_timeout = default_timeout
        self.max_window = max_window
        self.notice_interval = notice_interval       # for the proxies: how often to show life
        self.notifier = notifier
        self.admin_url = admin_url.rstrip("/") if admin_url else None
        self.groups_of = groups_of or (lambda user: frozenset())
        self.clock = clock
        self.instance = secrets.token_hex(4)
        self._tickets: dict[str, Ticket] = {}
        self._grants: dict[tuple[str, str], Grant] = {}
        self._nursery: trio.Nursery | None = None

    # -- service -------------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.store.run, self._apply, self._resync)
            if self.notifier is not None:
                await nursery.start(self.notifier.run)
            try:
                for approval in await self.store.live_grants(self.clock()):
                    self._add_grant(approval)
            except ApprovalUnavailable as exc:
                log("approvals.grants_unavailable", level="warning", error=str(exc))
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    @property
    def pending_here(self) -> int:
        return len(self._tickets)

    # -- the proxies' side -----------------------------------------------------------------------

    async def submit(self, request: ApprovalRequest, *,
                     on_event: Callable[[dict], None] | None = None) -> Ticket:
        """Hold a statement for approval. Raises ApprovalUnavailable when the request cannot be
        stored (fail closed: the statement must not run)."""
        if self._nursery is None:
            raise ApprovalUnavailable("the approval broker is not running")
        timeout = request.timeout or self.default_timeout
        now = self.clock()
        approval = Approval(new_id(), request, now, now + timeout, instance=self.instance)
        ticket = Ticket(self, approval, trio.current_time() + timeout, on_event)
        self._tickets[ticket.id] = ticket        # before the store: a fast decision finds it
        try:
            await self.store.add(approval)
        except BaseException:
            del self._tickets[ticket.id]
            raise
        metrics.APPROVALS_PENDING.inc()
        metrics.APPROVAL_REQUESTS.inc(source=request.source)
        self._emit(ticket, "requested", database=request.database, statement=request.statement,
                   approvers=list(request.approvers), timeout_s=timeout, expires=iso(approval.expires),
                   source=request.source, session=request.session_id, client=request.client)
        if self.notifier is not None:
            self.notifier.notify(self.webhook_payload(approval))
        return ticket

    def window_grant(self, user: str, fingerprint: str) -> Grant | None:
        if not fingerprint:
            return None
        key = (user, fingerprint)
        grant = self._grants.get(key)
        if grant is None:
            return None
        if grant.expires <= self.clock():
            del self._grants[key]
            return None
        metrics.APPROVAL_WINDOW_USES.inc()
        return grant

    # -- the approvers' side ---------------------------------------------------------------------

    async def approvals(self, state: str = "pending", limit: int = 200) -> list[Approval]:
        if state == "pending":
            return await self.store.pending(self.clock())
        if state == "all":
            return await self.store.recent(limit)
        raise ApprovalError(f"state must be pending or all, not {state!r}")

    async def get(self, approval_id: str) -> Approval:
        approval = await self.store.get(approval_id)
        if approval is None:
            raise UnknownApproval(f"no approval request {approval_id}")
        return approval

    async def approve(self, approval_id: str, approver: str, reason: str = "",
                      window: str | float | None = None) -> Approval:
        approver, reason = _name(approver), _reason(reason)
        seconds = self._window(window)
        current = await self._open(approval_id)
        if seconds is not None and not current.request.fingerprint:
            raise ApprovalError(f"approval {approval_id} has no statement fingerprint: approve it once")
        check_approver(current, approver, groups_of=self.groups_of)
        now = self.clock()
        decision = current.decide(APPROVED, approver, reason, now, WINDOW if seconds else ONCE, seconds)
        return self._apply(await self.store.decide(approval_id, decision, now))

    async def deny(self, approval_id: str, approver: str, reason: str = "") -> Approval:
        approver, reason = _name(approver), _reason(reason)
        current = await self._open(approval_id)
        check_approver(current, approver, deny=True, groups_of=self.groups_of)
        now = self.clock()
        return self._apply(await self.store.decide(approval_id, current.decide(DENIED, approver, reason, now), now))

    async def _open(self, approval_id: str) -> Approval:
        current = await self.get(approval_id)
        if not current.pending:
            raise AlreadyDecided(f"approval {approval_id} is already {current.state}", current)
        if current.expires <= self.clock():
            raise AlreadyDecided(f"approval {approval_id} has timed out", current)
        return current

    def _window(self, window: str | float | None) -> float | None:
        if window in (None, "", 0, "once"):
            return None
        try:
            seconds = parse_duration(window)
        except ValueError as exc:
            raise ApprovalError(f"window: {exc}") from None
        if seconds > self.max_window:
            raise ApprovalError(f"window {format_duration(seconds)} is longer than the longest allowed, "
                                f"{format_duration(self.max_window)}")
        return seconds

    # -- what happened ---------------------------------------------------------------------------

    def _apply(self, approval: Approval) -> Approval:
        """A decision is known (made here, or told by the store): grant, release, record."""
        if approval.pending:
            return approval
        grant = self._add_grant(approval)
        ticket = self._tickets.get(approval.id)
        if ticket is not None:
            self._release(ticket, approval)
        if grant is not None:
            self._release_covered(grant)
        return approval

    def _add_grant(self, approval: Approval) -> Grant | None:
        """Keep a window grant; returns it when it is news (not heard before, not expired)."""
        grant = approval.window_grant()
        now = self.clock()
        if grant is None or grant.expires <= now:
            return None
        key = (grant.user, grant.fingerprint)
        known = self._grants.get(key)
        if known is not None and known.expires >= grant.expires - 0.001:   # a rounding is no news
            return None
        for stale in [k for k, g in self._grants.items() if g.expires <= now]:
            del self._grants[stale]
        self._grants[key] = grant
        return grant

    def _release_covered(self, grant: Grant) -> None:
        """A window grant also covers what this user already waits for with that fingerprint."""
        for ticket in list(self._tickets.values()):
            request = ticket.request
            if (request.user, request.fingerprint) == (grant.user, grant.fingerprint) and self._nursery:
                self._nursery.start_soon(self._approve_by_grant, ticket, grant)

    async def _approve_by_grant(self, ticket: Ticket, grant: Grant) -> None:
        try:
            check_approver(ticket.approval, grant.approver, groups_of=self.groups_of)
        except ApprovalError:
            return                          # that rule wants someone else: it keeps waiting
        now = self.clock()
        decision = ticket.approval.decide(APPROVED, grant.approver, f"window grant {grant.approval_id}",
                                          now, WINDOW, grant.expires - now)
        await self._final_write(ticket, decision)

    def _release(self, ticket: Ticket, approval: Approval) -> None:
        if not ticket._resolve(approval):
            return
        del self._tickets[ticket.id]
        metrics.APPROVALS_PENDING.dec()
        metrics.APPROVAL_OUTCOMES.inc(outcome=approval.state)
        fields: dict[str, Any] = {"waited_s": round(max(0.0, (approval.decided or self.clock()) - approval.created), 3)}
        if approval.state in (APPROVED, DENIED):
            fields.update(approver=approval.approver, reason=approval.reason)
        if approval.state == APPROVED:
            fields["grant"] = approval.grant
            if approval.grant_until is not None:
                fields.update(window_s=approval.window, until=iso(approval.grant_until))
        if approval.state == WITHDRAWN:
            fields["reason"] = approval.reason
        self._emit(ticket, approval.state, **fields)

    async def _time_out(self, ticket: Ticket) -> None:
        decision = ticket.approval.decide(TIMED_OUT, None, "", self.clock())
        await self._final_write(ticket, decision)
        if not ticket.done:                      # the store could not be told: time out here
            self._release(ticket, decision)

    def _withdraw(self, ticket: Ticket, reason: str) -> None:
        decision = ticket.approval.decide(WITHDRAWN, None, reason, self.clock())
        self._release(ticket, decision)
        if self._nursery is not None:
            self._nursery.start_soon(self._final_write, ticket, decision)

    async def _final_write(self, ticket: Ticket, decision: Approval) -> None:
        """Write a decision the broker makes itself; when another one got there first, that one
        stands (a request timing out just as someone approves it is approved)."""
        with trio.CancelScope(shield=True), trio.move_on_after(STORE_DEADLINE):
            try:
                self._apply(await self.store.decide(ticket.id, decision, self.clock()))
            except AlreadyDecided as exc:
                if exc.approval is not None:
                    self._apply(exc.approval)
            except (ApprovalUnavailable, UnknownApproval) as exc:
                log("approval.store_write_failed", level="warning", id=ticket.id, state=decision.state,
                    error=str(exc))

    def _resync(self) -> None:
        """After the store reconnects: decisions made meanwhile were not heard; ask again."""
        if self._nursery is not None:
            self._nursery.start_soon(self._refresh)

    async def _refresh(self) -> None:
        try:
            for approval in await self.store.live_grants(self.clock()):
                self._add_grant(approval)
            for ticket in list(self._tickets.values()):
                current = await self.store.get(ticket.id)
                if current is None:
                    await self.store.add(ticket.approval)
                else:
                    self._apply(current)
        except ApprovalUnavailable as exc:
            log("approvals.resync_failed", level="warning", error=str(exc))

    def _emit(self, ticket: Ticket, event: str, **fields: Any) -> None:
        request = ticket.request
        record = {"type": "approval", "event": event, "id": ticket.id, "rule": request.rule_id,
                  "user": request.user, **fields}
        log(f"approval.{event}", **{k: v for k, v in record.items() if k not in ("type", "event")})
        if ticket._on_event is not None:
            try:
                ticket._on_event(dict(record))
            except Exception as exc:        # the session's recorder must not break the broker
                log("approval.event_callback_failed", level="error", id=ticket.id, error=repr(exc))

    def webhook_payload(self, approval: Approval) -> dict[str, Any]:
        r = approval.request
        how = {"cli": f"wireproxy approvals approve {approval.id}",
               "deny_cli": f"wireproxy approvals deny {approval.id}"}
        if self.admin_url:
            how["api"] = f"{self.admin_url}/approvals/{approval.id}/approve"
            how["deny_api"] = f"{self.admin_url}/approvals/{approval.id}/deny"
        return {"event": "approval.requested", "id": approval.id, "user": r.user, "database": r.database,
                "statement": r.statement, "rule": r.rule_id, "approvers": list(r.approvers),
                "source": r.source, "client": r.client, "created": iso(approval.created),
                "expires": iso(approval.expires), "approve": how}


def _name(approver: object) -> str:
    if not isinstance(approver, str) or not approver.strip():
        raise ApprovalError("approver must be a non-empty string: who decides")
    approver = approver.strip()
    if len(approver) > MAX_NAME or not approver.isprintable():
        raise ApprovalError(f"approver must be a printable name of at most {MAX_NAME} characters")
    return approver


def _reason(reason: object) -> str:
    if reason is None:
        return ""
    if not isinstance(reason, str):
        raise ApprovalError("reason must be a string")
    if len(reason) > MAX_REASON:
        raise ApprovalError(f"reason must be at most {MAX_REASON} characters")
    return reason.strip()
