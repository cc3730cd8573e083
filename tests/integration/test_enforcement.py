"""Statements judged in the data path: blocks in simple and extended protocol and pipelines,
PostgreSQL's own transaction semantics around a block, FunctionCall, audit, live reload."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import asyncpg
import psycopg
import pytest

from protocols.postgres import ErrorResponse, FunctionCall, FunctionCallResponse, Query
from rawclient import RawClient

RULES = """
mode = "enforce"

[[rule]]
id = "no-drop"
action = "block"
statements = ["drop", "truncate"]
message = "dropping objects needs a change request"

[[rule]]
id = "no-wipe"
action = "block"
statements = ["delete", "update"]
without_where = true
message = "bound your writes"

[[rule]]
id = "no-lo-export"
action = "block"
functions = ["lo_export", "lo_import"]
message = "no server files"

[[rule]]
id = "watch-secrets"
action = "audit"
tables = ["secrets"]
"""


@pytest.fixture
def guarded(pg, start_proxy, tmp_path):
    pg.psql("drop table if exists guarded_t; create table guarded_t (id int primary key, v text);"
            "insert into guarded_t values (1, 'one'), (2, 'two');"
            "drop table if exists secrets; create table secrets (k text)")
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    proxy = start_proxy(rules=rules)
    proxy.rules_path = rules
    return proxy


def count(pg) -> int:
    return int(pg.psql("select count(*) from guarded_t").strip())


def test_psql_block_is_42501_and_session_goes_on(pg, guarded):
    script = "\\set VERBOSITY verbose\ndrop table guarded_t;\nselect 'still here';\n"
    run = subprocess.run(["psql", "-X", "-d", pg.dsn(port=guarded.port)], input=script,
                         capture_output=True, text=True, timeout=30)
    assert "ERROR:  42501: blocked by wireproxy rule no-drop: dropping objects needs a change request" in run.stderr
    assert "still here" in run.stdout
    assert count(pg) == 2


@pytest.mark.parametrize("prepare", [False, True], ids=["extended", "prepared"])
def test_psycopg_extended_block(pg, guarded, prepare):
    with psycopg.connect(pg.dsn(port=guarded.port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="blocked by wireproxy rule no-wipe"):
            conn.execute("delete from guarded_t where %s", (True,), prepare=prepare)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="rule no-wipe"):
            conn.execute("update guarded_t set v = %s", ("x",), prepare=prepare)
        assert conn.execute("select count(*) from guarded_t where id = %s", (1,), prepare=prepare).fetchone() == (1,)
    assert count(pg) == 2


def test_simple_protocol_multi_statement_is_all_or_nothing(pg, guarded):
    with psycopg.connect(pg.dsn(port=guarded.port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-drop"):
            conn.execute("insert into guarded_t values (3, 'three'); drop table guarded_t", prepare=False)
        # ClientCursor sends a Query message: the simple protocol
        cur = psycopg.ClientCursor(conn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute("insert into guarded_t values (4, 'four'); truncate guarded_t")
    assert count(pg) == 2


def test_pipeline_block_rolls_back_the_batch(pg, guarded):
    with psycopg.connect(pg.dsn(port=guarded.port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-drop"):
            with conn.pipeline():
                conn.execute("insert into guarded_t values (%s, 'pipelined')", (10,))
                conn.execute("drop table guarded_t")
                conn.execute("insert into guarded_t values (%s, 'after')", (11,))
        assert conn.execute("select 'usable'").fetchone() == ("usable",)
    # PostgreSQL's own recovery: the batch up to Sync was one implicit transaction.
    assert count(pg) == 2


def test_block_inside_transaction_fails_it_like_postgres(pg, guarded):
    with psycopg.connect(pg.dsn(port=guarded.port)) as conn:   # not autocommit: BEGIN is implicit
        conn.execute("insert into guarded_t values (20, 'in tx')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("drop table guarded_t")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("select 1")
        conn.rollback()
        assert conn.execute("select count(*) from guarded_t").fetchone() == (2,)
    assert count(pg) == 2


def test_commit_after_block_is_a_rollback(pg, guarded):
    script = ("begin;\ninsert into guarded_t values (30, 'x');\ntruncate guarded_t;\n"
              "select 1;\ncommit;\n")
    run = subprocess.run(["psql", "-X", "-d", pg.dsn(port=guarded.port)], input=script,
                         capture_output=True, text=True, timeout=30)
    assert "blocked by wireproxy rule no-drop" in run.stderr
    assert "current transaction is aborted" in run.stderr
    assert run.stdout.strip().splitlines()[-1] == "ROLLBACK"
    assert count(pg) == 2


def test_asyncpg_prepared_block(pg, guarded):
    async def scenario():
        conn = await asyncpg.connect(pg.url(port=guarded.port))
        try:
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="no-drop"):
                await conn.prepare("drop table guarded_t")
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="no-wipe"):
                await conn.execute("delete from guarded_t")
            return await conn.fetchval("select count(*) from guarded_t")
        finally:
            await conn.close()
    assert asyncio.run(scenario()) == 2


def test_function_call_is_resolved_and_judged(pg, guarded):
    oids = dict(tuple(line.split("|")) for line in pg.psql(
        "select proname, oid from pg_proc where oid in ('lo_export(oid,text)'::regprocedure, "
        "'abs(int4)'::regprocedure)").split())
    client = RawClient(guarded.port)
    client.startup()
    client.send(FunctionCall(int(oids["abs"]), (1,), (b"\xff\xff\xff\xfb",), 1).encode())
    answer = client.read_until("ReadyForQuery")
    assert [m.result for m in answer if isinstance(m, FunctionCallResponse)] == [b"\x00\x00\x00\x05"]
    client.send(FunctionCall(int(oids["lo_export"]), (0, 0), (b"\x00\x00\x00\x01", b"/tmp/x"), 0).encode())
    answer = client.read_until("ReadyForQuery")
    (error,) = [m for m in answer if isinstance(m, ErrorResponse)]
    assert error.sqlstate == "42501" and "no-lo-export" in error.message
    # only the client's own traffic comes back: nothing of the proxy's catalog lookup
    assert not [m for m in client.messages if type(m).__name__ in ("RowDescription", "DataRow")]
    client.send(Query("select 'after'").encode())
    assert any(type(m).__name__ == "DataRow" for m in client.read_until("ReadyForQuery"))


def test_audit_is_logged_with_rule_and_statement(pg, guarded):
    with psycopg.connect(pg.dsn(port=guarded.port), autocommit=True) as conn:
        conn.execute("select * from secrets")
    event = guarded.wait_for("statement.audit")
    assert event["rule"] == "watch-secrets" and event["statement"] == "select * from secrets"


def test_reload_changes_decisions_for_a_live_session(pg, guarded):
    with psycopg.connect(pg.dsn(port=guarded.port), autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("select v from guarded_t where id = %s", (1,), prepare=True)
        assert cur.fetchone() == ("one",)
        guarded.rules_path.write_text(RULES + """
[[rule]]
id = "no-guarded-reads"
action = "block"
tables = ["guarded_t"]
statements = ["select"]
""")
        mark = len(guarded.events)
        guarded.signal(signal.SIGHUP)
        guarded.wait_for("rules.reloaded", after=mark)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-guarded-reads"):
            cur.execute("select v from guarded_t where id = %s", (1,), prepare=True)   # prepared before
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-guarded-reads"):
            cur.execute("select v from guarded_t where id = 2")
        # a broken file is reported and the rules in force stay
        mark = len(guarded.events)
        guarded.rules_path.write_text("[[rule]]\nid = 'x'\naction = 'explode'\n")
        failed = guarded.wait_for("rules.reload_failed", after=mark)
        assert "action" in failed["error"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-guarded-reads"):
            cur.execute("select v from guarded_t where id = 2")
        # fixing the file (no SIGHUP) is picked up by the watcher
        mark = len(guarded.events)
        guarded.rules_path.write_text(RULES)
        guarded.wait_for("rules.reloaded", after=mark)
        assert cur.execute("select v from guarded_t where id = 2").fetchone() == ("two",)


def test_default_rules_block_drop_through_serve(pg, start_proxy):
    from wireproxy.config import DEFAULT_RULES
    proxy = start_proxy(rules=DEFAULT_RULES)
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="blocked by wireproxy rule no-drop"):
            conn.execute("DROP /* sneaky */ TABLE \"guarded_t\"")
        assert conn.execute("select 1").fetchone() == (1,)


def test_an_audit_mode_file_logs_what_it_would_block_and_blocks_nothing(pg, start_proxy, tmp_path):
    pg.psql("drop table if exists dry_run_t; create table dry_run_t (id int)")
    rules = tmp_path / "dry-run.toml"
    rules.write_text('mode = "audit"\n\n[[rule]]\nid = "would-drop"\naction = "block"\nstatements = ["drop"]\n')
    proxy = start_proxy(rules=rules)
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        conn.execute("drop table dry_run_t")
    event = proxy.wait_for("statement.audit")
    assert event["rule"] == "would-drop" and event["statement"] == "drop table dry_run_t"
    assert pg.psql("select count(*) from pg_class where relname = 'dry_run_t'").strip() == "0"


def test_approve_without_an_approval_broker_fails_closed(pg, start_proxy, tmp_path):
    rules = tmp_path / "approve.toml"
    rules.write_text('[[rule]]\nid = "ask-first"\naction = "approve"\nstatements = ["truncate"]\n')
    proxy = start_proxy(rules=rules)
    pg.psql("drop table if exists approve_t; create table approve_t (id int); insert into approve_t values (1)")
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="rule ask-first"):
            conn.execute("truncate approve_t")
        assert conn.execute("select count(*) from approve_t").fetchone() == (1,)
