"""Routine bodies against a real PostgreSQL: routines created with real CREATE FUNCTION
statements, looked up by running routine_lookup_sql directly through psycopg (as the relay
will, in band), fed to the session judge, judged again."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from wireproxy.config.rulefile import load_rules
from wireproxy.policy import Action, Policy, column_lookup_sql, routine_lookup_sql

DEFAULT = Path(__file__).resolve().parents[2] / "rules" / "default.toml"

SETUP = """
CREATE TABLE orders (id int PRIMARY KEY, total int);
CREATE TABLE audit (id int);
CREATE SCHEMA app;
CREATE FUNCTION purge() RETURNS void LANGUAGE sql AS $$DELETE FROM orders$$;
CREATE FUNCTION app.purge_one(p int) RETURNS void LANGUAGE sql AS $$DELETE FROM orders WHERE id = p$$;
CREATE PROCEDURE wipe() LANGUAGE plpgsql AS $$BEGIN TRUNCATE audit; END$$;
CREATE PROCEDURE wipe_atomic() LANGUAGE sql BEGIN ATOMIC DELETE FROM audit; END;
CREATE FUNCTION total() RETURNS bigint LANGUAGE sql STABLE AS $$SELECT sum(total) FROM orders$$;
CREATE FUNCTION calls_purge() RETURNS void LANGUAGE plpgsql AS $$BEGIN PERFORM purge(); END$$;
CREATE FUNCTION dyn(t text) RETURNS void LANGUAGE plpgsql AS $$BEGIN EXECUTE 'DELETE FROM ' || t; END$$;
CREATE FUNCTION "we'ird"() RETURNS int LANGUAGE sql AS $$SELECT 1$$;
CREATE FUNCTION step(s int, v int) RETURNS int LANGUAGE plpgsql AS $$BEGIN DELETE FROM audit; RETURN s + v; END$$;
CREATE AGGREGATE evil_sum(int) (SFUNC = step, STYPE = int, INITCOND = '0');
CREATE FUNCTION ovl(a int) RETURNS int LANGUAGE sql AS $$SELECT a$$;
CREATE FUNCTION ovl(a text) RETURNS void LANGUAGE sql AS $$UPDATE orders SET total = 0$$;
"""


@pytest.fixture(scope="module")
def db(pg):
    pg.psql("DROP DATABASE IF EXISTS wp_routines")
    pg.psql("CREATE DATABASE wp_routines")
    with psycopg.connect(pg.dsn(dbname="wp_routines"), autocommit=True) as conn:
        conn.execute(SETUP)
        yield conn


def judge_with_catalog(conn, judge, sql: str):
    """The relay's loop: judge, look up what it asks for (one read-only query), judge again."""
    decision = judge.query(sql)
    rounds = 0
    while decision.routines_needed:
        rounds += 1
        assert rounds <= 6
        names = decision.routines_needed
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            rows = conn.execute(routine_lookup_sql(names)).fetchall()
        judge.learn_routines(names, rows)
        decision = judge.query(sql)
    return decision


@pytest.fixture
def judge():
    return Policy(load_rules([DEFAULT])).session("app")


@pytest.mark.parametrize("sql,rule", [
    ("SELECT purge()", "no-unbounded-write"),
    ("CALL wipe()", "no-truncate"),
    ("CALL wipe_atomic()", "no-unbounded-write"),
    ("SELECT calls_purge()", "no-unbounded-write"),
    ("SELECT dyn('orders')", "no-dynamic-sql"),
    ("SELECT evil_sum(id) FROM orders", "no-unbounded-write"),
    ("SELECT ovl('x')", "no-unbounded-write"),
    ("SELECT public.purge()", "no-unbounded-write"),
])
def test_destructive_bodies_block_the_call(db, judge, sql, rule):
    d = judge_with_catalog(db, judge, sql)
    assert d.action == Action.BLOCK and d.rule_id == rule, (sql, d.rule_id, d.message)
    assert d.message.startswith("calls ")


@pytest.mark.parametrize("sql", ["SELECT total()", "SELECT app.purge_one(3)", 'SELECT "we\'ird"()',
                                 "SELECT no_such_function()", "SELECT count(*), now() FROM orders"])
def test_harmless_bodies_pass(db, judge, sql):
    assert judge_with_catalog(db, judge, sql).action == Action.ALLOW


def test_unqualified_names_follow_the_search_path(db, judge):
    db.execute("CREATE FUNCTION app.reset() RETURNS void LANGUAGE sql AS $$DELETE FROM orders$$")
    try:
        assert judge_with_catalog(db, judge, "SELECT reset()").action == Action.ALLOW   # not on the path
        db.execute("SET search_path = app, public")
        other = Policy(load_rules([DEFAULT])).session("app")
        assert judge_with_catalog(db, other, "SELECT reset()").rule_id == "no-unbounded-write"
    finally:
        db.execute("RESET search_path")
        db.execute("DROP FUNCTION app.reset()")


def test_lookup_sql_works_without_standard_conforming_strings(db):
    db.execute("SET standard_conforming_strings = off")
    try:
        rows = db.execute(routine_lookup_sql(["we'ird", "purge", "x\\y"])).fetchall()
    finally:
        db.execute("RESET standard_conforming_strings")
    found = {r[0]: r for r in rows}
    assert found["we'ird"][2] == "we'ird" and found["purge"][4] == "sql" and found["x\\y"][2] is None


def judge_with_columns(conn, judge, sql: str):
    decision = judge.query(sql)
    if decision.columns_needed:
        names = decision.columns_needed
        judge.learn_columns(names, conn.execute(column_lookup_sql(names)).fetchall())
        decision = judge.query(sql)
    return decision


@pytest.mark.parametrize("sql,blocked", [
    ("DELETE FROM orders WHERE id IS NOT NULL", True),         # the primary key is NOT NULL
    ("DELETE FROM orders WHERE total IS NOT NULL", False),     # nullable
    ("UPDATE orders SET total = 0 WHERE id > -2147483649", True),
    ("DELETE FROM public.orders WHERE id IS NOT NULL", True),
    ('DELETE FROM "Odd Name" WHERE k IS NOT NULL', True),
    ("DELETE FROM nowhere WHERE id IS NOT NULL", False),
])
def test_column_facts_from_the_catalog(db, judge, sql, blocked):
    db.execute('CREATE TABLE IF NOT EXISTS "Odd Name" (k int NOT NULL)')
    d = judge_with_columns(db, judge, sql)
    assert (d.action == Action.BLOCK) is blocked, (sql, d.rule_id)
