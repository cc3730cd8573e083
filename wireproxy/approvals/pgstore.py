"""The PostgreSQL store: one table shared by every wireproxy instance, and LISTEN/NOTIFY.

An approval given through any instance releases the statement held on another: `decide` is
one conditional UPDATE (pending -> final, so exactly one decision wins) that NOTIFYs the
channel with the request's id in the same transaction; every instance LISTENs on a connection
of its own, reads the row the id names and hands it to the broker. Waiting for a notification
is a blocking read on that socket: no polling.

Two connections per instance: the listener, and one for queries (serialized; approvals are
human-scale traffic). A lost connection is reopened with a doubling pause (0.5 s to 30 s);
after the listener comes back the broker re-reads what it holds (`on_resync`), since
notifications sent meanwhile are gone. While the database is unreachable every operation
raises ApprovalUnavailable: held statements are refused, not let through.
"""

from __future__ import annotations

import json
import re
import time

import trio

from ..pgclient import PgClient, PgClientError, PgConnectionLost, PgServerError, PgTarget
from ..telemetry.logs import log
from .model import APPROVED, DENIED, AlreadyDecided, Approval, ApprovalUnavailable
from .store import OnChange, check_transition

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SCHEMA_LOCK = 7_472_730_001          # pg_advisory_xact_lock key: instances create the table one at a time
RETENTION = 30 * 86400                # decided records older than this are deleted
PRUNE_EVERY = 3600.0


class PostgresStore:
    name = "postgres"

    def __init__(self, target: PgTarget, password: str | None = None, *, table: str = "wireproxy_approvals",
                 op_timeout: float = 10.0, max_backoff: float = 30.0):
        if not _IDENTIFIER.match(table):
            raise ValueError(f"table {table!r} must be a lower-case SQL identifier")
        self.target = target
        self.table = table
        self.channel = table
        self.op_timeout = op_timeout
        self.max_backoff = max_backoff
        self._password = password
        self._conn: PgClient | None = None
        self._lock = trio.Lock()
        self._listening = False
        self._pruning = False
        self._backoff = 0.5

    @property
    def connected(self) -> bool:
        return self._listening

    # -- the listener --------------------------------------------------------------------------

    async def run(self, on_change: OnChange, on_resync, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        started = False

        def ready() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        try:
            await self._run(on_change, on_resync, ready)
        finally:
            if self._conn is not None:
                with trio.CancelScope(shield=True):
                    await self._conn.aclose()

    async def _run(self, on_change: OnChange, on_resync, ready) -> None:
        async with trio.open_nursery() as nursery:       # readers of notified rows, the pruner
            first = True
            while True:
                try:
                    await self._listen(nursery, on_change, on_resync, ready, resync=not first)
                except (PgClientError, ApprovalUnavailable) as exc:
                    log("approvals.store_unavailable", level="error", store=str(self.target), error=str(exc),
                        retry_in_s=self._backoff, note="held statements are refused until the store is back")
                first = False
                ready()                   # serve goes on without the store; it fails closed
                await trio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, self.max_backoff)

    async def _listen(self, nursery, on_change: OnChange, on_resync, ready, *, resync: bool) -> None:
        listener = await PgClient.connect(self.target, self._password, timeout=self.op_timeout)
        try:
            await self._ensure_schema()
            await listener.execute(f"LISTEN {self.channel}")
            self._listening = True
            self._backoff = 0.5
            log("approvals.store_connected", store=str(self.target), table=self.table)
            if resync:
                on_resync()
            if not self._pruning:
                self._pruning = True
                nursery.start_soon(self._prune_now_and_then)
            ready()
            while True:
                note = await listener.notification()
                nursery.start_soon(self._tell, note.payload, on_change, on_resync)
        finally:
            self._listening = False
            with trio.CancelScope(shield=True):
                await listener.aclose()

    async def _tell(self, approval_id: str, on_change: OnChange, on_resync) -> None:
        try:
            approval = await self.get(approval_id)
        except ApprovalUnavailable:
            on_resync()                     # read everything again once the store answers
            return
        if approval is not None:
            on_change(approval)

    async def _prune_now_and_then(self) -> None:
        while True:
            try:
                result = await self._query(f"DELETE FROM {self.table} WHERE coalesce(decided, expires) < $1",
                                           time.time() - RETENTION)
                if result.tag not in ("DELETE 0", ""):
                    log("approvals.pruned", table=self.table, tag=result.tag)
            except ApprovalUnavailable:
                pass
            await trio.sleep(PRUNE_EVERY)

    async def _ensure_schema(self) -> None:
        """Create the table on first use. (Only then: CREATE INDEX IF NOT EXISTS needs the
        table's owner even when the index exists, and instances may run as other roles.)"""
        t = self.table
        if (await self._query("SELECT to_regclass($1) IS NOT NULL", t)).rows == [("t",)]:
            return
        await self._query(
            f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK}); "
            f"CREATE TABLE IF NOT EXISTS {t} (id text PRIMARY KEY, state text NOT NULL, "
            f"expires double precision NOT NULL, decided double precision, "
            f"grant_until double precision, doc jsonb NOT NULL); "
            f"CREATE INDEX IF NOT EXISTS {t}_pending ON {t} (expires) WHERE state = 'pending'; "
            f"CREATE INDEX IF NOT EXISTS {t}_grants ON {t} (grant_until) WHERE grant_until IS NOT NULL")

    # -- the store -----------------------------------------------------------------------------

    async def add(self, approval: Approval) -> None:
        await self._query(f"INSERT INTO {self.table} (id, state, expires, doc) VALUES ($1, $2, $3, $4::jsonb) "
                          f"ON CONFLICT (id) DO NOTHING",
                          approval.id, approval.state, approval.expires, _doc(approval))

    async def get(self, approval_id: str) -> Approval | None:
        rows = (await self._query(f"SELECT doc FROM {self.table} WHERE id = $1", approval_id)).rows
        return _approval(rows[0][0]) if rows else None

    async def pending(self, now: float) -> list[Approval]:
        result = await self._query(f"SELECT doc FROM {self.table} WHERE state = 'pending' AND expires > $1 "
                                   f"ORDER BY (doc->>'created_ts')::float8", now)
        return [_approval(row[0]) for row in result.rows]

    async def recent(self, limit: int) -> list[Approval]:
        result = await self._query(f"SELECT doc FROM {self.table} ORDER BY (doc->>'created_ts')::float8 DESC "
                                   f"LIMIT $1", limit)
        return [_approval(row[0]) for row in result.rows]

    async def live_grants(self, now: float) -> list[Approval]:
        result = await self._query(f"SELECT doc FROM {self.table} WHERE grant_until > $1", now)
        return [_approval(row[0]) for row in result.rows]

    async def decide(self, approval_id: str, decision: Approval, now: float) -> Approval:
        live_only = decision.state in (APPROVED, DENIED)
        result = await self._query(
            f"WITH changed AS (UPDATE {self.table} SET state = $2, decided = $3, grant_until = $4, "
            f"doc = $5::jsonb WHERE id = $1 AND state = 'pending' AND (NOT $6::bool OR expires > $3) "
            f"RETURNING id) SELECT pg_notify($7, id) FROM changed",
            approval_id, decision.state, decision.decided, decision.grant_until, _doc(decision),
            live_only, self.channel)
        if result.rows:
            return decision
        current = await self.get(approval_id)
        if current == decision:         # our own write, committed before a lost connection
            return decision
        check_transition(current, approval_id, decision, now)
        raise AlreadyDecided(f"approval {approval_id} changed meanwhile", current)

    async def _query(self, sql: str, *params):
        async with self._lock:
            for attempt in (1, 2):
                try:
                    with trio.fail_after(self.op_timeout):
                        if self._conn is None or self._conn.closed:
                            self._conn = await PgClient.connect(self.target, self._password,
                                                                timeout=self.op_timeout)
                        return await self._conn.execute(sql, *params)
                except PgConnectionLost as exc:
                    if attempt == 2:    # once more on a fresh connection, then give up
                        raise ApprovalUnavailable(f"approvals store {self.target}: {exc}") from None
                except trio.TooSlowError:
                    raise ApprovalUnavailable(f"approvals store {self.target}: no answer within "
                                              f"{self.op_timeout:g}s") from None
                except (PgServerError, PgClientError) as exc:
                    raise ApprovalUnavailable(f"approvals store {self.target}: {exc}") from None


def _doc(approval: Approval) -> str:
    return json.dumps(approval.to_dict(), ensure_ascii=False)


def _approval(doc: str | None) -> Approval:
    if doc is None:
        raise ApprovalUnavailable("approvals store: a row without its document")
    return Approval.from_dict(json.loads(doc))
