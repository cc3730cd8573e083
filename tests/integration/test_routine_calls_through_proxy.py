"""Writes hidden behind a name, through the proxy: the relay looks a routine's body up in band
(once per routine and session, never seen by the client), judges it, and blocks the call — in
the simple protocol, the extended protocol, inside an open pipeline (where the lookup must not
commit the batch's implicit transaction) and with asyncpg. Harmless routines pass."""

from __future__ import annotations

import asyncio

import asyncpg
import psycopg
import pytest

from wireproxy.config import DEFAULT_RULES

SETUP = """
DROP TABLE IF EXISTS rc_orders, rc_audit CASCADE;
CREATE TABLE rc_orders (id int PRIMARY KEY, total int);
CREATE TABLE rc_audit (id int);
INSERT INTO rc_orders VALUES (1, 10), (2, 20);
CREATE OR REPLACE FUNCTION rc_purge() RETURNS void LANGUAGE sql AS $$DELETE FROM rc_orders$$;
CREATE OR REPLACE FUNCTION rc_wipe_log() RETURNS void LANGUAGE plpgsql AS $$BEGIN TRUNCATE rc_audit; END$$;
CREATE OR REPLACE FUNCTION rc_total() RETURNS bigint LANGUAGE sql STABLE AS $$SELECT sum(total) FROM rc_orders$$;
"""


@pytest.fixture
def proxy(pg, start_proxy):
    pg.psql(SETUP)
    return start_proxy(rules=DEFAULT_RULES)


def orders(pg) -> int:
    return int(pg.psql("SELECT count(*) FROM rc_orders").strip())


@pytest.mark.parametrize("prepare", [False, True], ids=["simple", "extended"])
def test_a_call_whose_body_deletes_everything_is_blocked(pg, proxy, prepare):
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-unbounded-write"):
            conn.execute("SELECT rc_purge()", prepare=prepare)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-truncate"):
            conn.execute("SELECT rc_wipe_log()", prepare=prepare)
        assert conn.execute("SELECT rc_total()", prepare=prepare).fetchone() == (30,)
        assert conn.execute("SELECT 1").fetchone() == (1,)      # nothing of the lookups shows
    assert orders(pg) == 2


def test_inside_an_open_pipeline_the_lookup_keeps_the_batch_one_transaction(pg, proxy):
    with psycopg.connect(pg.dsn(port=proxy.port)) as conn:       # a transaction block, pipelined
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-unbounded-write"):
            with conn.pipeline():
                conn.execute("INSERT INTO rc_audit VALUES (1)")
                conn.execute("SELECT rc_purge()")
        conn.rollback()
    assert orders(pg) == 2
    assert pg.psql("SELECT count(*) FROM rc_audit").strip() == "0"   # the batch rolled back whole
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        with conn.pipeline():
            conn.execute("INSERT INTO rc_audit VALUES (2)")
            cur = conn.execute("SELECT rc_total()")
        assert cur.fetchone() == (30,)
    assert pg.psql("SELECT count(*) FROM rc_audit").strip() == "1"


def test_asyncpg_prepared_calls_are_judged_by_their_bodies(pg, proxy):
    async def run():
        conn = await asyncpg.connect(pg.url(port=proxy.port))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="no-unbounded-write"):
                await conn.fetch("SELECT rc_purge()")
            assert await conn.fetchval("SELECT rc_total() + $1", 1) == 31
        finally:
            await conn.close()
    asyncio.run(run())
    assert orders(pg) == 2
