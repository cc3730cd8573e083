"""Routine bodies judged through the relay contract, with a fake catalog: rows built from real
CREATE FUNCTION texts, as routine_lookup_sql returns them."""

from pathlib import Path

import pytest

from wireproxy.config.rulefile import load_rules, parse_rules
from wireproxy.policy import ROUTINE_LOOKUP_SQL, Action, Policy, routine_lookup_sql
from wireproxy.policy.routinebook import ROUTINE_DEPTH
from wireproxy.policy.routines import MAX_ROUTINE_DEPTH, ROUTINE_COLUMNS, parse_rows

DEFAULT = Path(__file__).resolve().parents[3] / "rules" / "default.toml"


def row(asked, definition, *, schema="public", name=None, kind="f", language=None, source="", calls=None):
    name = name or asked.rpartition(".")[2]
    if language is None:
        language = "plpgsql" if "plpgsql" in definition.lower() else "sql"
    return (asked, schema, name, kind, language, source, definition, "", False, calls)


class FakeCatalog:
    """Answers routine lookups from a dict name -> rows; counts what it was asked."""

    def __init__(self, rows: dict):
        self.rows = rows
        self.asked: list[str] = []

    def run(self, judge, sql: str, rounds: int = 10):
        decision = judge.query(sql)
        while decision.routines_needed and rounds:
            names = decision.routines_needed
            self.asked.extend(names)
            routine_lookup_sql(names)    # the relay would send this text
            judge.learn_routines(names, [r for n in names for r in self.rows.get(n, [(n,) + (None,) * 9])])
            decision = judge.query(sql)
            rounds -= 1
        return decision


CATALOG = {
    "purge": [row("purge", "CREATE FUNCTION public.purge() RETURNS void LANGUAGE sql AS $f$DELETE FROM orders$f$")],
    "wipe": [row("wipe", "CREATE PROCEDURE public.wipe() LANGUAGE plpgsql AS $f$BEGIN TRUNCATE audit; END$f$", kind="p")],
    "dropper": [row("dropper", "CREATE FUNCTION public.dropper() RETURNS void LANGUAGE plpgsql AS $f$BEGIN DROP TABLE t; END$f$")],
    "reader": [row("reader", "CREATE FUNCTION public.reader(p int) RETURNS bigint LANGUAGE sql AS $f$SELECT count(*) FROM orders WHERE id > p$f$")],
    "one": [row("one", "CREATE FUNCTION public.one(p int) RETURNS void LANGUAGE plpgsql AS $f$BEGIN DELETE FROM orders WHERE id = p; END$f$")],
    "outer_fn": [row("outer_fn", "CREATE FUNCTION public.outer_fn() RETURNS void LANGUAGE sql AS $f$SELECT inner_fn()$f$")],
    "inner_fn": [row("inner_fn", "CREATE FUNCTION public.inner_fn() RETURNS void LANGUAGE sql AS $f$UPDATE accounts SET balance = 0$f$")],
    "py": [row("py", "", language="plpython3u", source="import os")],
    "cfunc": [row("cfunc", "", language="c", source="cfunc")],
    "ovl": [row("ovl", "CREATE FUNCTION public.ovl(a int) RETURNS int LANGUAGE sql AS $f$SELECT a$f$"),
            row("ovl", "CREATE FUNCTION public.ovl(a text) RETURNS void LANGUAGE sql AS $f$DELETE FROM t WHERE true$f$")],
    "app.cleanup": [row("app.cleanup", "CREATE FUNCTION app.cleanup() RETURNS void LANGUAGE sql AS $f$DELETE FROM sessions$f$", schema="app")],
    "myagg": [row("myagg", "", kind="a", language="internal", source="aggregate_dummy", calls="{public.agg_step,-}")],
    "public.agg_step": [row("public.agg_step", "CREATE FUNCTION public.agg_step(s int, v int) RETURNS int LANGUAGE plpgsql AS $f$BEGIN DELETE FROM t; RETURN s; END$f$")],
    "atomic": [row("atomic", "CREATE PROCEDURE public.atomic() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END", kind="p")],
    "exporter": [row("exporter", "CREATE FUNCTION public.exporter() RETURNS SETOF users LANGUAGE sql AS $f$SELECT * FROM users$f$")],
}
for i in range(MAX_ROUTINE_DEPTH + 2):   # chain0 -> chain1 -> ... (deeper than judged)
    CATALOG[f"chain{i}"] = [row(f"chain{i}", f"CREATE FUNCTION public.chain{i}() RETURNS void LANGUAGE sql AS "
                                             f"$f$SELECT chain{i + 1}()$f$")]


@pytest.fixture
def setup():
    return Policy(load_rules([DEFAULT])), FakeCatalog(CATALOG)


@pytest.mark.parametrize("sql,rule", [
    ("SELECT purge()", "no-unbounded-write"),
    ("CALL wipe()", "no-truncate"),
    ("SELECT 1 FROM dropper()", "no-drop"),
    ("SELECT outer_fn()", "no-unbounded-write"),   # calls outer_fn, which calls inner_fn, whose...
    ("SELECT py()", "no-opaque-code"),
    ("SELECT ovl('x')", "no-unbounded-write"),
    ("SELECT app.cleanup()", "no-unbounded-write"),
    ("SELECT myagg(x) FROM t", "no-unbounded-write"),
    ("CALL atomic()", "no-unbounded-write"),
    ("SELECT * FROM exporter()", "approve-whole-table-read"),
    ("CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION dropper()", "no-drop"),
    ("EXPLAIN ANALYZE SELECT purge()", "no-unbounded-write"),   # runs it: its writes count
    ("DO $$BEGIN PERFORM purge(); END$$", "no-unbounded-write"),
    ("WITH x AS (SELECT purge()) SELECT 1", "no-unbounded-write"),
])
def test_calls_of_destructive_routines_are_stopped(setup, sql, rule):
    policy, catalog = setup
    d = catalog.run(policy.session("app"), sql)
    assert d.rule_id == rule and d.action >= Action.APPROVE, (sql, d)
    assert not d.routines_needed
    routine = next(name for name in CATALOG if f"{name}(" in sql)
    assert d.message.startswith(f"calls {routine},"), d.message


@pytest.mark.parametrize("sql", ["SELECT reader(5)", "SELECT one(7)", "SELECT cfunc()", "SELECT missing_fn()",
                                 "SELECT now(), lower('A'), pg_catalog.version()",
                                 # the rows of a whole-table function go nowhere here:
                                 "EXPLAIN ANALYZE SELECT * FROM exporter()",
                                 "DO $$BEGIN PERFORM exporter(); END$$"])
def test_calls_of_harmless_or_missing_routines_pass(setup, sql):
    policy, catalog = setup
    assert catalog.run(policy.session("app"), sql).action == Action.ALLOW


def test_lookups_happen_once_per_routine_and_session(setup):
    policy, catalog = setup
    judge = policy.session("app")
    first = judge.query("SELECT reader(1)")
    assert first.action == Action.ALLOW and first.routines_needed == ("reader",)
    catalog.run(judge, "SELECT reader(1)")
    catalog.run(judge, "SELECT reader(2), missing_fn()")
    catalog.run(judge, "SELECT missing_fn()")
    assert catalog.asked == ["reader", "missing_fn"]
    assert judge.query("SELECT reader(3)").routines_needed == ()
    other = policy.session("app")    # another session knows nothing yet
    assert other.query("SELECT reader(3)").routines_needed == ("reader",)


def test_nested_routines_are_asked_round_by_round(setup):
    policy, catalog = setup
    judge = policy.session("app")
    assert judge.query("SELECT outer_fn()").routines_needed == ("outer_fn",)
    judge.learn_routines(["outer_fn"], CATALOG["outer_fn"])
    d = judge.query("SELECT outer_fn()")
    assert d.routines_needed == ("inner_fn",) and d.action == Action.ALLOW
    judge.learn_routines(["inner_fn"], CATALOG["inner_fn"])
    d = judge.query("SELECT outer_fn()")
    assert d.action == Action.BLOCK and d.routines_needed == ()


def test_depth_is_bounded(setup):
    policy, catalog = setup
    d = catalog.run(policy.session("app"), "SELECT chain0()")
    assert d.action == Action.BLOCK and d.rule_id == ROUTINE_DEPTH


def test_hot_path_is_untouched(setup):
    policy, _ = setup
    judge = policy.session("app")
    sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213"
    d = judge.query(sql)
    assert d.routines_needed == () and d.action == Action.ALLOW
    hits = policy.cache_stats()["hits"]
    assert judge.query(sql) is d and policy.cache_stats()["hits"] == hits + 1   # the shared cache


def test_a_blocked_statement_needs_no_lookup(setup):
    policy, _ = setup
    d = policy.session("app").query("DELETE FROM t; SELECT purge()")
    assert d.action == Action.BLOCK and d.routines_needed == ()


def test_rule_reload_rejudges_known_bodies(setup):
    policy, catalog = setup
    judge = policy.session("app")
    assert catalog.run(judge, "SELECT purge()").action == Action.BLOCK
    policy.ruleset = parse_rules("")
    assert judge.query("SELECT purge()").action == Action.ALLOW


def test_fastpath_function_call_is_judged_by_its_body(setup):
    policy, _ = setup
    judge = policy.session("app")
    d = judge.function("public.purge")
    assert d.routines_needed == ("public.purge",)
    judge.learn_routines(["public.purge"], [row("public.purge", CATALOG["purge"][0][6])])
    assert judge.function("public.purge").action == Action.BLOCK


def test_rows_may_be_dicts_and_text_arrays():
    rows = [dict(zip(ROUTINE_COLUMNS, CATALOG["myagg"][0]))]
    bodies = parse_rows(["myagg"], rows)
    assert bodies["myagg"][0].calls == ("public.agg_step",) and bodies["myagg"][0].kind == "a"
    assert parse_rows(["nope"], [("nope",) + (None,) * 9]) == {"nope": ()}


def test_lookup_sql_is_one_read_only_select_with_no_quotes_from_names():
    sql = ROUTINE_LOOKUP_SQL(["f", "s.g", "we'ird\\"])
    assert sql.startswith("SELECT ") and ";" not in sql and "we'ird" not in sql
    with pytest.raises(ValueError):
        routine_lookup_sql([])
