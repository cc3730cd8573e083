"""Two brokers sharing the PostgreSQL store, each with its own connections, as two wireproxy
instances would: a decision given through one releases the statement held by the other."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from pgcluster import free_port
from wireproxy.approvals import (AlreadyDecided, ApprovalRequest, ApprovalUnavailable, Broker)
from wireproxy.approvals.pgstore import PostgresStore
from wireproxy.pgclient import PgTarget

_tables = itertools.count()


def request(user="alice", fingerprint="update t set x = ? where id = ?", timeout=None):
    return ApprovalRequest(user, "app", "UPDATE t SET x = 1 WHERE id = 2", "ask-updates", (), timeout, fingerprint)


@pytest.fixture
def table():
    return f"approvals_test_{next(_tables)}"


async def start_broker(nursery, pg, table: str, name: str, user: str | None = None, password: str | None = None):
    target = PgTarget(host=pg.host, port=pg.port, user=user or pg.user, database="postgres",
                      application_name=f"wireproxy-{name}")
    broker = Broker(PostgresStore(target, password, table=table))
    await nursery.start(broker.run)
    assert broker.store.connected
    return broker


async def wait_for(predicate, timeout: float = 20.0):
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


async def test_an_approval_through_one_instance_releases_the_other(nursery, pg, table):
    a = await start_broker(nursery, pg, table, "a")
    pg.psql(f"grant select, insert, update, delete on {table} to scramuser")
    b = await start_broker(nursery, pg, table, "b", user="scramuser", password="scram-secret")
    ticket = await b.submit(request())
    seen_by_a = await a.approvals()
    assert [x.id for x in seen_by_a] == [ticket.id] and seen_by_a[0].instance == b.instance
    with trio.fail_after(20):
        async with trio.open_nursery() as inner:
            outcomes = []

            async def hold():
                outcomes.append(await ticket.wait())

            inner.start_soon(hold)
            await trio.testing.wait_all_tasks_blocked()
            await a.approve(ticket.id, "bob", "go ahead", window="10m")
    assert outcomes[0].approved and outcomes[0].approver == "bob" and outcomes[0].grant == "window"
    # The window grant reached both instances: through the result here, the notification there.
    assert a.window_grant("alice", request().fingerprint) is not None
    assert b.window_grant("alice", request().fingerprint) is not None
    assert await a.approvals() == [] and await b.approvals() == []
    # A third instance starting later loads the live grants from the table.
    c = await start_broker(nursery, pg, table, "c")
    assert c.window_grant("alice", request().fingerprint).approval_id == ticket.id


async def test_a_denial_through_one_instance(nursery, pg, table):
    a = await start_broker(nursery, pg, table, "a")
    b = await start_broker(nursery, pg, table, "b")
    ticket = await b.submit(request())
    await a.deny(ticket.id, "bob", "not now")
    with trio.fail_after(20):
        outcome = await ticket.wait()
    assert outcome.message == "denied by bob: not now"
    with pytest.raises(AlreadyDecided):
        await b.approve(ticket.id, "carol")


async def test_two_decisions_at_once_one_wins(nursery, pg, table):
    a = await start_broker(nursery, pg, table, "a")
    b = await start_broker(nursery, pg, table, "b")
    ticket = await a.submit(request())
    results = []

    async def decide(broker, how):
        try:
            if how == "approve":
                await broker.approve(ticket.id, "bob")
            else:
                await broker.deny(ticket.id, "carol")
            results.append(how)
        except AlreadyDecided:
            results.append("refused")

    async with trio.open_nursery() as inner:
        inner.start_soon(decide, a, "approve")
        inner.start_soon(decide, b, "deny")
    assert sorted(results) in (["approve", "refused"], ["deny", "refused"])
    outcome = await ticket.wait()
    assert outcome.approved == ("approve" in results)


async def test_timeouts_and_withdrawals_reach_the_other_instance(nursery, pg, table):
    a = await start_broker(nursery, pg, table, "a")
    b = await start_broker(nursery, pg, table, "b")
    late = await b.submit(request(timeout=0.2))
    assert (await late.wait()).timed_out
    assert (await a.get(late.id)).state == "timed_out"
    gone = await b.submit(request())
    gone.withdraw()
    await wait_for(lambda: gone.done)
    with trio.fail_after(20):
        while (await a.get(gone.id)).state != "withdrawn":
            await trio.sleep(0.02)
    assert await a.approvals() == []


async def test_a_lost_listener_reconnects_and_hears_what_it_missed(nursery, pg, table):
    a = await start_broker(nursery, pg, table, "a")
    b = await start_broker(nursery, pg, table, "b-lossy")
    ticket = await b.submit(request())
    pg.psql("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'wireproxy-b-lossy'")
    await a.approve(ticket.id, "bob")          # perhaps while b is not listening: its resync finds it
    with trio.fail_after(30):
        assert (await ticket.wait()).approved
    await wait_for(lambda: b.store.connected)
    again = await b.submit(request())           # and b works as before
    await a.deny(again.id, "bob")
    with trio.fail_after(20):
        assert not (await again.wait()).approved


async def test_an_unreachable_store_fails_closed(nursery):
    store = PostgresStore(PgTarget(host="127.0.0.1", port=free_port()), op_timeout=2)
    broker = Broker(store)
    await nursery.start(broker.run)               # serve is not held up by the store
    assert not store.connected
    with pytest.raises(ApprovalUnavailable, match="approvals store"):
        await broker.submit(request())
    assert broker.pending_here == 0
    with pytest.raises(ApprovalUnavailable):
        await broker.approvals()


def test_table_names_are_identifiers():
    with pytest.raises(ValueError):
        PostgresStore(PgTarget(), table="x; drop table y")
