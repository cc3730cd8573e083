"""WHERE checks the catalog decides (columnbook.py): rows as column_lookup_sql returns them."""

from pathlib import Path

import pytest

from wireproxy.config.rulefile import load_rules, parse_rules
from wireproxy.policy import Action, Policy, column_lookup_sql

DEFAULT = Path(__file__).resolve().parents[3] / "rules" / "default.toml"

COLUMNS = {   # table -> rows (asked, schema, table, column, type, not_null)
    "t": [("t", "public", "t", "id", "integer", True), ("t", "public", "t", "note", "text", False),
          ("t", "public", "t", "flag", "boolean", True), ("t", "public", "t", "maybe", "boolean", False),
          ("t", "public", "t", "big", "bigint", True)],
    "s.u": [("s.u", "s", "u", "id", "bigint", True)],
}


def judged(policy, sql):
    judge = policy.session("app")
    d = judge.query(sql)
    if d.columns_needed:
        names = d.columns_needed
        judge.learn_columns(names, [r for n in names for r in COLUMNS.get(n, [(n, None, None, None, None, None)])])
        d = judge.query(sql)
    return d


@pytest.fixture(scope="module")
def policy():
    return Policy(load_rules([DEFAULT]))


@pytest.mark.parametrize("sql", [
    "DELETE FROM t WHERE id IS NOT NULL",
    "UPDATE t SET note = '' WHERE flag IN (true, false)",
    "DELETE FROM t WHERE id > -2147483649",
    "DELETE FROM t WHERE 2147483648 > id",
    "DELETE FROM t WHERE id IS NOT NULL OR note = 'x'",
    "DELETE FROM s.u WHERE id IS NOT NULL",
])
def test_catalog_confirmed_tautologies_are_blocked(policy, sql):
    d = judged(policy, sql)
    assert d.action == Action.BLOCK and d.rule_id == "no-unbounded-write", (sql, d)
    (st,) = [s for s in d.facts if s.kind in ("update", "delete")]
    assert "catalog" in st.where_checks and st.tautological_where


@pytest.mark.parametrize("sql", [
    "DELETE FROM t WHERE note IS NOT NULL",            # nullable
    "UPDATE t SET note = '' WHERE maybe IN (true, false)",   # nullable boolean
    "DELETE FROM t WHERE big > -2147483649",           # bigint goes further
    "DELETE FROM s.u WHERE id > -2147483649",
    "DELETE FROM missing WHERE id IS NOT NULL",         # no such table
    "DELETE FROM t WHERE id IS NOT NULL AND note = 'x'",
])
def test_what_the_catalog_does_not_confirm_passes(policy, sql):
    assert judged(policy, sql).action == Action.ALLOW


def test_columns_are_asked_once_and_not_for_the_hot_path(policy):
    judge = policy.session("app")
    assert judge.query("SELECT abalance FROM pgbench_accounts WHERE aid = 1").columns_needed == ()
    assert judge.query("DELETE FROM t WHERE id = 5").columns_needed == ()
    assert judge.query("DELETE FROM t WHERE id IS NOT NULL").columns_needed == ("t",)
    judge.learn_columns(["t"], COLUMNS["t"])
    assert judge.query("DELETE FROM t WHERE flag IN (true, false)").columns_needed == ()


def test_a_rule_can_leave_the_catalog_check_out(policy):
    p = Policy(parse_rules('[[rule]]\nid = "w"\naction = "block"\nstatements = ["delete"]\n'
                           'without_where = true\nwhere_checks = ["self_subquery", "value_range"]\n'))
    assert judged(p, "DELETE FROM t WHERE id IS NOT NULL").action == Action.ALLOW
    assert judged(p, "DELETE FROM t WHERE true").action == Action.BLOCK


def test_lookup_sql_quotes_nothing_from_the_names():
    sql = column_lookup_sql(['we"ird', "s.t'x"])
    assert sql.startswith("SELECT ") and "we\"ird" not in sql and "t'x" not in sql
    with pytest.raises(ValueError):
        column_lookup_sql([])
