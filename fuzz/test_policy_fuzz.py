"""Property tests for the policy engine.

1. Facts extraction raises SqlParseError and nothing else, for any text: arbitrary unicode,
   SQL-looking token soup (quotes, dollar quotes, comments, E'' strings, nesting), and
   PL/pgSQL bodies.
2. A crash never turns into allow: whatever fails inside extraction or judging, the decision
   is block (`internal-error`), even with on_parse_error = "allow".
3. Dressing up a blocked statement (comments in every gap, case, whitespace, quoted and
   U&-escaped identifiers, extra statements around it, CTE / EXPLAIN ANALYZE / DO wrappers)
   never gets it allowed.
4. The shape cache never changes a decision: judging through a warm cache equals judging fresh.

Short by default (a CI slice); WIREPROXY_SLOW=1 runs them long.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wireproxy.policy import Action, Policy
from wireproxy.policy import engine as engine_module
from wireproxy.policy import pgfacts
from wireproxy.policy.facts import SqlParseError, extract
from wireproxy.config.rulefile import load_rules, parse_rules

DEFAULT = Path(__file__).resolve().parent.parent / "rules" / "default.toml"


def slow_examples(short: int, long: int = 20_000) -> int:
    """Hypothesis budget: a short slice in CI, the long run with WIREPROXY_SLOW=1."""
    return long if os.environ.get("WIREPROXY_SLOW") else short


FUZZ = settings(max_examples=slow_examples(150), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

_loaded: dict = {}


def default_rules():
    if "rules" not in _loaded:
        _loaded["rules"] = load_rules([DEFAULT])
    return _loaded["rules"]


def default_policy() -> Policy:
    if "policy" not in _loaded:
        _loaded["policy"] = Policy(default_rules())
    return _loaded["policy"]


# ---------------------------------------------------------------------------------------------
# generators

TOKENS = [
    "SELECT", "select", "FROM", "WHERE", "DELETE", "UPDATE", "SET", "INSERT", "INTO", "VALUES", "DROP",
    "TABLE", "TRUNCATE", "WITH", "AS", "(", ")", ",", ";", "=", "<>", "OR", "AND", "NOT", "true", "1",
    "'t'", "'it''s'", "E'\\x41\\''", "$$", "$q$", "$q$ x $q$", "$$ a $$", "--", "\n", "/*", "*/",
    "/* a /* b */ c */", "\"users\"", "U&\"\\0075sers\"", "users", "id", "pg_read_file('x')",
    "pg_catalog.", "lo_export", "EXPLAIN", "ANALYZE", "(ANALYZE false)", "DO", "BEGIN", "END",
    "EXECUTE", "PREPARE", "p", "COPY", "TO", "STDOUT", "PROGRAM", "'ls'", "RETURNING", "*", "$1",
    "CREATE", "FUNCTION", "f()", "RETURNS", "int", "LANGUAGE", "plpgsql", "sql", "MERGE", "USING",
    "ON", "WHEN", "MATCHED", "THEN", "GRANT", "PUBLIC", "ROLE", "::", "bool", "||", "format(", "%I",
    "CASE", "ELSE", "NULL", "IS", "LIMIT", "ALL", "UNION", "\\", "'", "\"", "$", "[", "]", "{", "}",
    "\x00", "\ud800", "é", "日本",
]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join)
arbitrary = st.text(max_size=200)

PLPGSQL_LINES = [
    "DELETE FROM t;", "DELETE FROM t WHERE id = v;", "v := pg_read_file('x');", "PERFORM 1;",
    "EXECUTE 'DROP TABLE ' || v;", "EXECUTE 'SELECT 1';", "EXECUTE $e$TRUNCATE t$e$;", "RAISE NOTICE '%', v;",
    "IF v IS NULL THEN RETURN; END IF;", "FOR r IN SELECT * FROM t LOOP END LOOP;",
    "FOR r IN EXECUTE v LOOP END LOOP;", "BEGIN NULL; EXCEPTION WHEN others THEN NULL; END;",
    "UPDATE t SET a = 1 WHERE b;", "v = (SELECT count(*) FROM u)::text;", "COMMIT;", "garbage here;",
]
do_blocks = st.lists(st.sampled_from(PLPGSQL_LINES), max_size=8).map(
    lambda lines: "DO $body$ DECLARE v text; b boolean; r record; BEGIN " + " ".join(lines) + " END $body$")


def _judges_or_raises_own_error(sql: str) -> None:
    try:
        facts = extract(sql)
    except SqlParseError as exc:
        assert isinstance(exc.message, str)
        assert not exc.internal, exc.message  # a bug of ours would show up here
        return
    for s in facts.statements:
        assert s.kind in pgfacts._KIND.values() or s.kind in (
            "copy_to", "copy_from", "grant", "revoke", "create", "alter", "drop", "other")


# ---------------------------------------------------------------------------------------------
# 1. only SqlParseError

@pytest.mark.slow
@FUZZ
@given(arbitrary)
def test_arbitrary_text_only_raises_parse_error(sql):
    _judges_or_raises_own_error(sql)


@pytest.mark.slow
@FUZZ
@given(token_soup)
def test_token_soup_only_raises_parse_error(sql):
    _judges_or_raises_own_error(sql)


@pytest.mark.slow
@FUZZ
@given(do_blocks)
def test_plpgsql_only_raises_parse_error(sql):
    _judges_or_raises_own_error(sql)


@pytest.mark.slow
@FUZZ
@given(st.sampled_from(["mysql", "sqlite", "tsql", "snowflake", "bigquery"]), token_soup)
def test_other_dialects_only_raise_parse_error(dialect, sql):
    try:
        extract(sql, dialect)
    except SqlParseError:
        pass


# ---------------------------------------------------------------------------------------------
# 2. a crash never turns into allow

@pytest.mark.slow
@settings(FUZZ, max_examples=slow_examples(60, 3_000))
@given(st.one_of(token_soup, do_blocks), st.integers(min_value=1, max_value=40), st.sampled_from([
    (pgfacts._Extractor, "walk"), (pgfacts._Extractor, "statement"), (pgfacts._Extractor, "funccall"),
    (pgfacts._Truth, "truth"), (pgfacts._Extractor, "plpgsql"), (pgfacts, "shape_key"),
    (engine_module._Compiled, "judge"), (engine_module.Policy, "_decide"),
]))
def test_injected_faults_block(sql, countdown, target):
    owner, name = target
    original = getattr(owner, name)
    calls = [0]
    raised = [0]

    def faulty(*args, **kwargs):
        calls[0] += 1
        if calls[0] >= countdown:
            raised[0] += 1
            raise random.choice([RuntimeError("injected"), KeyError("x"), TypeError("y"), RecursionError()])
        return original(*args, **kwargs)

    relaxed = Policy(parse_rules('on_parse_error = "allow"\n[[rule]]\nid = "r"\naction = "audit"\n'
                                 'statements = ["select"]\n'))
    setattr(owner, name, faulty)
    try:
        for judge in (lambda: relaxed.session("u").query(sql), lambda: relaxed.judge_sql(sql + " "),
                      lambda: relaxed.session("u").parse(sql + "  ", "s1")):
            before = raised[0]
            decision = judge()
            assert decision.action in tuple(Action)
            if raised[0] > before:  # the fault hit this very judgement
                assert decision.action == Action.BLOCK and decision.rule_id == "internal-error", decision
    finally:
        setattr(owner, name, original)


@pytest.mark.slow
@FUZZ
@given(st.one_of(arbitrary, token_soup))
def test_decisions_are_always_well_formed(sql):
    d = default_policy().session("u").query(sql)
    assert d.action in tuple(Action)
    if d.action != Action.ALLOW:
        assert d.rule_id
    if d.rule_id == "internal-error":
        assert d.action == Action.BLOCK


# ---------------------------------------------------------------------------------------------
# 3. dressing up never helps

ATTACKS = [
    ["DROP", "TABLE", "users"],
    ["TRUNCATE", "users"],
    ["DELETE", "FROM", "users"],
    ["DELETE", "FROM", "users", "WHERE", "1", "=", "1"],
    ["DELETE", "FROM", "users", "WHERE", "id", "=", "id"],
    ["UPDATE", "users", "SET", "admin", "=", "true", "WHERE", "true"],
    ["COPY", "users", "TO", "STDOUT"],
    ["COPY", "users", "FROM", "PROGRAM", "'id'"],
    ["SELECT", "pg_read_file", "(", "'/etc/passwd'", ")"],
    ["SELECT", "pg_catalog", ".", "lo_export", "(", "1", ",", "'/tmp/x'", ")"],
    ["GRANT", "SELECT", "ON", "users", "TO", "PUBLIC"],
    ["ALTER", "ROLE", "app", "SUPERUSER"],
    ["SET", "ROLE", "postgres"],
    ["ALTER", "SYSTEM", "SET", "work_mem", "=", "'1GB'"],
]
IDENTIFIER_FORMS = {
    "users": ['users', 'USERS', 'Users', '"users"', 'U&"\\0075sers"', 'public.users', '"public"."users"'],
    "pg_read_file": ['pg_read_file', 'PG_READ_FILE', '"pg_read_file"', 'pg_catalog.pg_read_file',
                     'U&"pg\\005fread\\005ffile"'],
    "lo_export": ['lo_export', 'LO_EXPORT', '"lo_export"'],
}
GAPS = [" ", "  ", "\n", "\t", " /* x */ ", "/**/", " -- c\n", " /* a /* nested */ b */ ", "\r\n"]
WRAPPERS = [
    "{}",
    "SELECT 1; {}",
    "{}; SELECT 2",
    "SELECT 'x;'; {} ; SELECT $$;$$",
    "DO $w$ BEGIN EXECUTE $e${}$e$; END $w$",
    "DO $w$ BEGIN {}; END $w$",
]


def _case(word: str, rnd: random.Random) -> str:
    if word.startswith(("'", '"', "U&")):
        return word
    return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in word)


@st.composite
def dressed(draw):
    attack = draw(st.sampled_from(ATTACKS))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    words = []
    for w in attack:
        forms = IDENTIFIER_FORMS.get(w)
        words.append(rnd.choice(forms) if forms else _case(w, rnd))
    gaps = [rnd.choice(GAPS) for _ in words]
    sql = "".join(w + g for w, g in zip(words, gaps)).rstrip()
    if "--" in gaps[-1]:
        sql += "\n"
    wrapper = draw(st.sampled_from(WRAPPERS))
    if "PROGRAM" in sql.upper() and "DO" in wrapper:
        wrapper = "{}"
    return attack, wrapper.format(sql)


@pytest.mark.slow
@settings(FUZZ, max_examples=slow_examples(300, 20_000))
@given(dressed())
def test_dressed_up_attacks_stay_blocked(case):
    attack, sql = case
    d = default_policy().session("u").query(sql)
    assert d.action == Action.BLOCK, (sql, d.rule_id, d.facts)
    assert d.rule_id not in ("internal-error",), sql


# ---------------------------------------------------------------------------------------------
# 4. caches never change a decision

STATEMENT_TEMPLATES = [
    "SELECT * FROM t WHERE id = {n}", "DELETE FROM t WHERE {n} = {m}", "DELETE FROM t WHERE id = {n}",
    "UPDATE t SET a = {n} WHERE {m} < {n}", "SELECT set_config('{s}', 'x', false)",
    "DELETE FROM t WHERE '{b}'", "SELECT * FROM t LIMIT {n}", "INSERT INTO t VALUES ({n}, '{s}')",
    "DO $$ BEGIN EXECUTE 'DELETE FROM t WHERE {n} = {m}'; END $$",
    "SELECT query_to_xml('DELETE FROM t WHERE id = {n}', true, false, '')",
    # literals of any kind where normalize() puts a $n
    "DELETE FROM t WHERE id + {lit} = id + {lit2}", "UPDATE t SET a = 1 WHERE {lit} = {lit2}",
    "SELECT * FROM t LIMIT {lim}", "SELECT * FROM t WHERE a = {lit} LIMIT {lim}",
    "DO '{body}'", "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS '{sqlbody}'",
    "CREATE FUNCTION f(a varchar(9)) RETURNS void LANGUAGE sql AS '{sqlbody}'",
    "SET ROLE {role}", "SELECT * FROM t WHERE a = {lit} AND b IS NOT DISTINCT FROM {lit2}",
]
LITERALS = ["1", "2", "-1", "1.5", "'x'", "'1'", "'t'", "true", "false", "NULL", "B'1'", "E'\\x31'"]
BODIES = ["BEGIN NULL; END", "BEGIN DELETE FROM t; END", "BEGIN PERFORM 1; END",
          "BEGIN EXECUTE ''TRUNCATE t''; END"]
SQL_BODIES = ["select 1", "delete from t", "select pg_read_file(''x'')", "update t set a = 1 where id = 2"]


@pytest.mark.slow
@settings(FUZZ, max_examples=slow_examples(200, 5_000))
@given(st.lists(st.tuples(st.sampled_from(STATEMENT_TEMPLATES), st.integers(-3, 3), st.integers(-3, 3),
                          st.sampled_from(["role", "work_mem", "search_path", "x"]),
                          st.sampled_from(["t", "f", "yes", "no", "maybe"]),
                          st.sampled_from(LITERALS), st.sampled_from(LITERALS),
                          st.sampled_from(["ALL", "NULL", "5", "0"]), st.sampled_from(BODIES),
                          st.sampled_from(SQL_BODIES), st.sampled_from(["admin", "'admin'", "NONE", "'none'"])),
                min_size=1, max_size=12))
def test_warm_caches_decide_like_cold(items):
    warm = Policy(default_rules())
    judge = warm.session("u")
    for template, n, m, s, b, lit, lit2, lim, body, sqlbody, role in items:
        sql = template.format(n=n, m=m, s=s, b=b, lit=lit, lit2=lit2, lim=lim, body=body, sqlbody=sqlbody,
                              role=role)
        cold = Policy(default_rules()).session("u").query(sql)   # fresh caches
        hot = judge.query(sql)
        assert (hot.action, hot.rule_id, hot.matched) == (cold.action, cold.rule_id, cold.matched), sql
        if hot.facts is not None and cold.facts is not None:
            assert [f.to_dict() for f in hot.facts] == [f.to_dict() for f in cold.facts], sql
