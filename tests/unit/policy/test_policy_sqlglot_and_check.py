"""Other SQL dialects through sqlglot, the shape cache's soundness, and `wireproxy check`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from wireproxy.cli import check as check_cmd
from wireproxy.policy.facts import SqlParseError, extract
from wireproxy.policy.pgfacts import extract_pg, parse_pg, shape_key

DEFAULT = Path(__file__).resolve().parents[3] / "rules" / "default.toml"


# ---------------------------------------------------------------------------------------------
# sqlglot

@pytest.mark.parametrize("dialect, sql, kind, unbounded", [
    ("mysql", "DELETE FROM `Users` WHERE 1=1 LIMIT 5", "delete", True),
    ("mysql", "DELETE FROM t WHERE id = id", "delete", True),
    ("mysql", "DELETE FROM t WHERE id = 5", "delete", False),
    ("mysql", "UPDATE t SET a = 1", "update", True),
    ("mysql", "UPDATE t SET a = 1 WHERE x OR TRUE", "update", True),
    ("sqlite", "DELETE FROM t WHERE 1", "delete", True),
    ("tsql", "DELETE FROM t WHERE 1=1", "delete", True),
    ("snowflake", "DELETE FROM t USING s WHERE s.x = 1", "delete", True),
    ("snowflake", "DELETE FROM t USING s WHERE s.x = t.x", "delete", False),
])
def test_sqlglot_where(dialect, sql, kind, unbounded):
    st = extract(sql, dialect).statements[0]
    assert st.kind == kind and st.unbounded == unbounded


def test_sqlglot_kinds_names_functions():
    sts = extract("SELECT LOAD_FILE('/etc/passwd'), pg_catalog.lo_export(1) FROM x.Y; DROP TABLE a.b", "mysql").statements
    assert [s.kind for s in sts] == ["select", "drop"]
    assert sts[0].functions == {"load_file", "pg_catalog.lo_export"} and sts[0].tables == {"x.y"}
    assert sts[1].targets == {"a.b"}
    assert extract("TRUNCATE TABLE x", "snowflake").statements[0].kind == "truncate"
    assert extract("GRANT SELECT ON t TO PUBLIC", "mysql").statements[0].roles == {"public"}
    assert "set_role" in extract("SET ROLE admin", "mysql").statements[0].flags
    assert "set_role" in extract("USE ROLE accountadmin", "snowflake").statements[0].flags
    assert "drop_column" in extract("ALTER TABLE t DROP COLUMN c", "mysql").statements[0].flags
    assert extract("SELECT * FROM t LIMIT 3", "mysql").statements[0].has_limit
    assert extract("SELECT TOP 5 * FROM t", "tsql").statements[0].has_limit
    sts = extract("MERGE INTO t USING s ON TRUE WHEN MATCHED THEN DELETE", "snowflake").statements
    assert [s.kind for s in sts] == ["merge", "delete"] and sts[1].unbounded
    sts = extract("WITH d AS (SELECT 1) DELETE FROM t WHERE TRUE", "mysql").statements
    assert sts[0].unbounded and sts[0].tables == {"t"}


def test_sqlglot_errors():
    with pytest.raises(SqlParseError):
        extract("SELECT * FROM t INTO OUTFILE '/tmp/x' garbage (", "mysql")
    with pytest.raises(SqlParseError):
        extract("SELECT 1", "klingon")


# ---------------------------------------------------------------------------------------------
# the shape cache: texts with one shape really do have the same facts

SHAPES = [
    ("SELECT * FROM t WHERE id = {a} AND name = '{s}'", "shareable"),
    ("UPDATE pgbench_accounts SET abalance = abalance + {a} WHERE aid = {b}", "shareable"),
    ("INSERT INTO t VALUES ({a}, '{s}', {b}.5, true, NULL)", "shareable"),
    ("SELECT * FROM t LIMIT {a}", "shareable"),
    ("DELETE FROM t WHERE {a} = {b}", "constant-dependent"),
    ("DELETE FROM t WHERE '{s}'", "constant-dependent"),
    ("SELECT set_config('{s}', 'x', false)", "constant-dependent"),
    ("SELECT query_to_xml('SELECT {a}', true, false, '')", "constant-dependent"),
    ("UPDATE t SET a = 1 WHERE id + {a} = id + {b}", "constant-dependent"),
]


@pytest.mark.parametrize("template, expected", SHAPES)
def test_shape_sharing_only_when_constants_do_not_matter(template, expected):
    sql = template.format(a=1, b=2, s="role")
    _, shareable = extract_pg(sql)
    assert shareable == (expected == "shareable")


@pytest.mark.parametrize("a, b, s", [(1, 1, "t"), (1, 2, "f"), (-3, 7, "x}y"), (0, 0, "role"), (5, 5, "search_path")])
@pytest.mark.parametrize("template, expected", SHAPES)
def test_shared_facts_equal_fresh_facts(template, expected, a, b, s):
    base = template.format(a=7, b=9, s="work_mem")
    other = template.format(a=a, b=b, s=s)
    assert shape_key(parse_pg(base)) == shape_key(parse_pg(other)) or "}" in s
    fresh_base, shareable = extract_pg(base)
    fresh_other, _ = extract_pg(other)
    if shareable and shape_key(parse_pg(base)) == shape_key(parse_pg(other)):
        assert fresh_base.to_list() == fresh_other.to_list()


def test_shape_key_keeps_what_is_not_a_constant():
    def key(sql: str) -> str:
        return shape_key(parse_pg(sql))
    assert key("SELECT * FROM t WHERE a = 1") == key("SELECT  *  FROM t WHERE a = 99999")
    assert key("SELECT * FROM t1") != key("SELECT * FROM t2")
    assert key('SELECT * FROM "a1"') != key('SELECT * FROM "a2"')
    assert key("SELECT 1") != key("SELECT '1'")        # kinds of constants stay apart
    assert key("SELECT true") != key("SELECT false")
    assert key("SELECT * FROM t LIMIT 5") != key("SELECT * FROM t LIMIT ALL")
    assert key("COPY t FROM '/a'") != key("COPY t FROM '/b'")   # not an A_Const: kept
    assert key("DO $$BEGIN NULL; END$$") != key("DO $$BEGIN PERFORM 1; END$$")
    assert key("SELECT $1") != key("SELECT $2")
    assert key("EXPLAIN (ANALYZE 0) SELECT 1") != key("EXPLAIN (ANALYZE 1) SELECT 1")
    assert key("SELECT '\"location\":5'") == key("SELECT 'x'")
    assert key("SELECT 'a\"}}' , 1") != key("SELECT 'b\"}}', 1")   # braces inside: kept, not blanked


# ---------------------------------------------------------------------------------------------
# wireproxy check

def run_check(capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="wireproxy")
    check_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["check", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_default_pack(capsys):
    assert check_cmd.DEFAULT_RULES == DEFAULT
    code, out, err = run_check(capsys, "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d")
    assert code == 1 and err == ""
    assert "decision:   block" in out and "no-unbounded-write" in out
    assert "blocked by wireproxy rule no-unbounded-write" in out
    assert "delete  [WITH d]" in out and "where=none" in out
    code, out, _ = run_check(capsys, "SELECT 1")
    assert code == 0 and "decision:   allow" in out and "(none matched)" in out


def test_check_json(capsys):
    code, out, _ = run_check(capsys, "--json", "DROP TABLE public.users")
    data = json.loads(out)
    assert code == 1 and data["action"] == "block" and data["rule"] == "no-drop"
    assert data["rule_source"].endswith("default.toml:" + data["rule_source"].rsplit(":", 1)[1])
    assert data["statements"] == [{"kind": "drop", "tables": ["public.users"], "targets": ["public.users"]}]
    code, out, _ = run_check(capsys, "--json", "selec 1")
    assert code == 1 and json.loads(out)["rule"] == "parse-error"


def test_check_audit_approve_user_dialect(capsys, tmp_path):
    rules = tmp_path / "r.toml"
    rules.write_text('[[rule]]\nid = "hold"\naction = "approve"\nusers = ["bob"]\nstatements = ["insert"]\n'
                     'message = "ask first"\n')
    code, out, _ = run_check(capsys, "--rules", str(rules), "--user", "bob", "INSERT INTO t VALUES (1)")
    assert code == 1 and "decision:   approve" in out and "held for approval: ask first" in out
    code, out, _ = run_check(capsys, "--rules", str(rules), "INSERT INTO t VALUES (1)")
    assert code == 0
    audit = tmp_path / "a.toml"
    audit.write_text('mode = "audit"\n[[rule]]\nid = "x"\naction = "block"\nstatements = ["select"]\n')
    code, out, _ = run_check(capsys, "--rules", str(audit), "SELECT 1")
    assert code == 0 and "audit (would block: audit mode)" in out
    code, out, _ = run_check(capsys, "--dialect", "mysql", "DELETE FROM t WHERE 1")
    assert code == 1 and "no-unbounded-write" in out


def test_check_reads_stdin(capsys, monkeypatch):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("TRUNCATE t"))
    code, out, _ = run_check(capsys, "-")
    assert code == 1 and "no-truncate" in out


def test_check_broken_rule_file_is_one_line_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "x"\naction = "block"\nstatements = ["dropp"]\n')
    code, out, err = run_check(capsys, "--rules", str(bad), "SELECT 1")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"wireproxy check: {bad}:4: ")
    assert "unknown statement kind 'dropp'" in err
    code, _, err = run_check(capsys, "--rules", str(tmp_path / "missing.toml"), "SELECT 1")
    assert code == 2 and "file not found" in err
    code, _, err = run_check(capsys, "--dialect", "klingon", "SELECT 1")
    assert code == 2 and "unknown SQL dialect 'klingon'" in err and err.count("\n") == 1
