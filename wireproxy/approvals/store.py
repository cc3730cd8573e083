"""Where approvals live: the Store interface and the in-process store (the default).

A store keeps Approval records and makes one change atomic: `decide` moves a pending request
to its final state exactly once, whichever instance asks first. Stores shared by several
instances (pgstore.PostgresStore) also tell every instance about changes made elsewhere, by
calling the `on_change` given to `run`, and call `on_resync` after a reconnect, when changes
may have been missed. Errors reaching the store raise ApprovalUnavailable.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Protocol

import trio

from .model import (APPROVED, DENIED, PENDING, AlreadyDecided, Approval, UnknownApproval)

OnChange = Callable[[Approval], None]


class Store(Protocol):
    name: str

    @property
    def connected(self) -> bool: ...

    async def run(self, on_change: OnChange, on_resync: Callable[[], None], *,
                  task_status=trio.TASK_STATUS_IGNORED) -> None: ...

    async def add(self, approval: Approval) -> None: ...

    async def get(self, approval_id: str) -> Approval | None: ...

    async def pending(self, now: float) -> list[Approval]: ...

    async def recent(self, limit: int) -> list[Approval]: ...

    async def decide(self, approval_id: str, decision: Approval, now: float) -> Approval: ...

    async def live_grants(self, now: float) -> list[Approval]: ...


def check_transition(current: Approval | None, approval_id: str, decision: Approval, now: float) -> None:
    """What every store checks before `decide` writes: the request exists and is still open.
    An approve or deny also needs it not past its deadline; a timeout or withdraw does not."""
    if current is None:
        raise UnknownApproval(f"no approval request {approval_id}")
    if current.state != PENDING:
        raise AlreadyDecided(f"approval {approval_id} is already {current.state}", current)
    if decision.state in (APPROVED, DENIED) and current.expires <= now:
        raise AlreadyDecided(f"approval {approval_id} has timed out", current)


class MemoryStore:
    """This process only. Keeps every pending request and the latest `keep` decided ones."""

    name = "memory"
    connected = True

    def __init__(self, keep: int = 1000):
        self.keep = keep
        self._pending: dict[str, Approval] = {}
        self._decided: OrderedDict[str, Approval] = OrderedDict()

    async def run(self, on_change: OnChange, on_resync: Callable[[], None], *,
                  task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()        # nothing to watch: every change is made here

    async def add(self, approval: Approval) -> None:
        self._pending[approval.id] = approval

    async def get(self, approval_id: str) -> Approval | None:
        return self._pending.get(approval_id) or self._decided.get(approval_id)

    async def pending(self, now: float) -> list[Approval]:
        return sorted((a for a in self._pending.values() if a.expires > now), key=lambda a: a.created)

    async def recent(self, limit: int) -> list[Approval]:
        everything = [*self._pending.values(), *self._decided.values()]
        return sorted(everything, key=lambda a: a.created, reverse=True)[:limit]

    async def decide(self, approval_id: str, decision: Approval, now: float) -> Approval:
        check_transition(await self.get(approval_id), approval_id, decision, now)
        del self._pending[approval_id]
        self._decided[approval_id] = decision
        while len(self._decided) > self.keep:
            self._decided.popitem(last=False)
        return decision

    async def live_grants(self, now: float) -> list[Approval]:
        return [a for a in self._decided.values() if (a.grant_until or 0) > now]
