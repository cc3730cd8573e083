"""The engine: combining rules, modes, parse errors, sessions, caches, live swaps."""

from __future__ import annotations

import pytest

from wireproxy.policy import Action, Decision, Policy, SqlParseError
from wireproxy.policy import engine as engine_module
from wireproxy.config.rulefile import parse_rules


def policy_of(text: str, **kw) -> Policy:
    return Policy(parse_rules(text, "rules.toml"), **kw)


RULES = """
[[rule]]
id = "audit-selects-on-secrets"
action = "audit"
statements = ["select"]
tables = ["secret_*"]

[[rule]]
id = "approve-deletes"
action = "approve"
statements = ["delete"]
message = "deletes need a second pair of eyes"

[[rule]]
id = "no-unbounded"
action = "block"
statements = ["delete", "update"]
without_where = true
message = "needs a WHERE"

[[rule]]
id = "allow-reads"
action = "allow"
statements = ["select"]
"""


def test_action_order_and_parse():
    assert Action.ALLOW < Action.AUDIT < Action.APPROVE < Action.BLOCK
    assert Action.parse("approve") is Action.APPROVE
    assert str(Action.BLOCK) == "block"


def test_most_restrictive_wins():
    p = policy_of(RULES)
    d = p.judge_sql("DELETE FROM t WHERE id = 1")
    assert (d.action, d.rule_id, d.matched) == (Action.APPROVE, "approve-deletes", ("approve-deletes",))
    d = p.judge_sql("DELETE FROM t")
    assert d.action == Action.BLOCK and d.rule_id == "no-unbounded"
    assert d.matched == ("approve-deletes", "no-unbounded")
    assert d.client_message() == "blocked by wireproxy rule no-unbounded: needs a WHERE"
    d = p.judge_sql("SELECT * FROM secret_keys")
    assert d.action == Action.AUDIT and d.rule_id == "audit-selects-on-secrets"
    assert d.matched == ("audit-selects-on-secrets", "allow-reads")
    d = p.judge_sql("SELECT 1")
    assert d.action == Action.ALLOW and d.rule_id == "allow-reads"
    d = p.judge_sql("INSERT INTO t VALUES (1)")
    assert d == Decision(Action.ALLOW, None, "", (), d.facts)


def test_multi_statement_takes_the_worst_statement():
    p = policy_of(RULES)
    d = p.judge_sql("SELECT 1; DELETE FROM t; SELECT * FROM secret_x")
    assert d.action == Action.BLOCK and d.rule_id == "no-unbounded"
    assert len(d.facts) == 3


def test_empty_query_is_allowed():
    p = policy_of(RULES)
    for sql in ("", "   ", "-- nothing\n", ";"):
        d = p.session("u").query(sql)
        assert d.action == Action.ALLOW and d.facts == ()


def test_audit_mode_downgrades_but_remembers():
    p = policy_of('mode = "audit"\n' + RULES)
    d = p.judge_sql("DELETE FROM t")
    assert d.action == Action.AUDIT and d.rule_id == "no-unbounded" and d.would == Action.BLOCK
    assert d.allowed and not d.blocked
    d = p.judge_sql("DELETE FROM t WHERE id = 1")
    assert d.action == Action.AUDIT and d.would == Action.APPROVE
    # parse errors in an all-audit setup are audited too
    d = p.judge_sql("selec")
    assert d.action == Action.AUDIT and d.rule_id == "parse-error" and d.would == Action.BLOCK


def test_mixed_modes_keep_each_files_mode(tmp_path):
    from wireproxy.config.rulefile import load_rules
    enforce = tmp_path / "a.toml"
    enforce.write_text('[[rule]]\nid = "no-drop"\naction = "block"\nstatements = ["drop"]\n')
    audit = tmp_path / "b.toml"
    audit.write_text('mode = "audit"\n[[rule]]\nid = "trial"\naction = "block"\nstatements = ["truncate", "drop"]\n')
    p = Policy(load_rules([enforce, audit]))
    assert p.judge_sql("TRUNCATE t").action == Action.AUDIT
    d = p.judge_sql("DROP TABLE t")
    assert d.action == Action.BLOCK and d.rule_id == "no-drop" and d.matched == ("no-drop", "trial")
    assert p.judge_sql("selec").action == Action.BLOCK  # not every file is in audit mode


def test_parse_errors_fail_closed_unless_relaxed():
    p = policy_of(RULES)
    d = p.session("u").query("DROP TABLE")
    assert d.action == Action.BLOCK and d.rule_id == "parse-error" and "syntax error" in d.message
    assert d.client_message().startswith("blocked by wireproxy rule parse-error: the SQL could not be parsed")
    relaxed = policy_of('on_parse_error = "allow"\n' + RULES)
    d = relaxed.session("u").query("DROP TABLE")
    assert d.action == Action.AUDIT and d.rule_id == "parse-error" and d.allowed


def test_on_parse_error_merging(tmp_path):
    from wireproxy.config.rulefile import load_rules
    files = {}
    for name, text in {"allow": 'on_parse_error = "allow"\n', "block": 'on_parse_error = "block"\n',
                       "silent": ""}.items():
        files[name] = tmp_path / f"{name}.toml"
        files[name].write_text(text)
    assert load_rules([files["allow"], files["silent"]]).on_parse_error == "allow"
    assert load_rules([files["allow"], files["block"]]).on_parse_error == "block"
    assert load_rules([files["silent"]]).on_parse_error == "block"
    assert load_rules([]).on_parse_error == "block"


def test_internal_errors_never_allow(monkeypatch):
    p = policy_of('on_parse_error = "allow"\n' + RULES)

    def boom(*a, **kw):
        raise RuntimeError("bug")

    monkeypatch.setattr(engine_module._Compiled, "judge", boom)
    for d in (p.session("u").query("SELECT 42"), p.judge_sql("SELECT 43"), p.session("u").parse("SELECT 44"),
              p.session("u").function("f")):
        assert d.action == Action.BLOCK and d.rule_id == "internal-error"


def test_extraction_bug_becomes_internal_parse_error(monkeypatch):
    from wireproxy.policy import pgfacts
    from wireproxy.policy.facts import extract

    def boom(*a, **kw):
        raise KeyError("oops")

    monkeypatch.setattr(pgfacts, "extract_pg", boom)
    with pytest.raises(SqlParseError) as info:
        extract("SELECT 1")
    assert info.value.internal
    p = policy_of('on_parse_error = "allow"\n')
    d = p.judge_sql("SELECT 2")
    assert d.action == Action.BLOCK and d.rule_id == "internal-error"


def test_prepare_execute_in_a_session():
    p = policy_of(RULES)
    judge = p.session("u")
    # the prepared statement is judged when prepared...
    assert judge.query("PREPARE d1(int) AS DELETE FROM t WHERE id = $1").action == Action.APPROVE
    # ...and EXECUTE is judged as what it runs
    d = judge.query("EXECUTE d1(5)")
    assert d.action == Action.APPROVE and d.rule_id == "approve-deletes"
    assert [s.kind for s in d.facts] == ["execute", "delete"]
    assert judge.query("PREPARE s1 AS SELECT 1").action == Action.ALLOW
    assert judge.query("EXECUTE s1").action == Action.ALLOW
    assert judge.query("CREATE TABLE x AS EXECUTE d1(1)").action == Action.APPROVE
    assert judge.query("EXPLAIN ANALYZE EXECUTE d1(1)").action == Action.APPROVE
    assert judge.query("EXPLAIN EXECUTE d1(1)").action == Action.ALLOW  # planned, not run
    # DEALLOCATE forgets
    judge.query("DEALLOCATE d1")
    d = judge.query("EXECUTE d1(5)")
    assert d.action == Action.BLOCK and d.rule_id == "unknown-prepared-statement"
    judge.query("DEALLOCATE ALL")
    assert judge.query("EXECUTE s1").rule_id == "unknown-prepared-statement"


def test_prepare_and_execute_in_one_string():
    p = policy_of(RULES)
    judge = p.session("u")
    d = judge.query("PREPARE x AS SELECT 1; EXECUTE x")
    assert d.action == Action.ALLOW
    assert judge.query("EXECUTE x").action == Action.ALLOW
    d = judge.query("DEALLOCATE x; EXECUTE x")
    assert d.rule_id == "unknown-prepared-statement"


def test_blocked_prepare_is_not_remembered():
    p = policy_of(RULES)
    judge = p.session("u")
    assert judge.query("PREPARE bad AS DELETE FROM t").action == Action.BLOCK
    assert judge.query("EXECUTE bad").rule_id == "unknown-prepared-statement"


def test_prepared_names_are_per_session():
    p = policy_of(RULES)
    a, b = p.session("u"), p.session("u")
    a.query("PREPARE s AS DELETE FROM t WHERE id = 1")
    assert a.query("EXECUTE s").action == Action.APPROVE
    assert b.query("EXECUTE s").rule_id == "unknown-prepared-statement"
    assert p.judge_sql("EXECUTE s").rule_id == "unknown-prepared-statement"


def test_unknown_prepared_follows_on_parse_error():
    p = policy_of('on_parse_error = "allow"\n' + RULES)
    d = p.session("u").query("EXECUTE nothing")
    assert d.action == Action.AUDIT and d.rule_id == "unknown-prepared-statement"


def test_protocol_parse_names_and_close():
    p = policy_of(RULES)
    judge = p.session("u")
    assert judge.parse("DELETE FROM t WHERE id = $1", name="stmt1").action == Action.APPROVE
    assert judge.query("EXECUTE stmt1(3)").action == Action.APPROVE
    judge.close("stmt1")
    assert judge.query("EXECUTE stmt1(3)").rule_id == "unknown-prepared-statement"
    assert judge.parse("DELETE FROM t", name="stmt2").action == Action.BLOCK
    assert "stmt2" not in judge.prepared
    judge.parse("SELECT 1")  # unnamed: not reachable from SQL
    assert "" not in judge.prepared


def test_nested_prepare_in_do_block_is_remembered():
    p = policy_of(RULES)
    judge = p.session("u")
    judge.query("DO $$ BEGIN EXECUTE 'PREPARE hidden AS DELETE FROM t WHERE id = 2'; END $$")
    d = judge.query("EXECUTE hidden")
    assert d.action == Action.APPROVE


def test_live_swap_changes_decisions_for_live_sessions():
    p = policy_of(RULES)
    judge = p.session("u")
    assert judge.query("TRUNCATE t").action == Action.ALLOW
    v = p.version
    p.ruleset = parse_rules('[[rule]]\nid = "no-truncate"\naction = "block"\nstatements = ["truncate"]\n')
    assert p.version == v + 1
    assert judge.query("TRUNCATE t").rule_id == "no-truncate"
    assert judge.query("DELETE FROM t").action == Action.ALLOW


def test_users_tools_models_context():
    p = policy_of("""
[[rule]]
id = "interns-read-only"
action = "block"
users = ["intern-*"]
statements = ["insert", "update", "delete"]

[[rule]]
id = "mcp-query-no-writes"
action = "approve"
tools = ["query"]
statements = ["insert"]

[[rule]]
id = "small-models"
action = "audit"
models = ["gpt-*-mini"]

[[rule]]
id = "secrets-in-prompts"
action = "block"
detectors = ["aws_access_key"]
""")
    assert p.session("intern-joe").query("INSERT INTO t VALUES (1)").rule_id == "interns-read-only"
    assert p.session("Intern-joe").query("INSERT INTO t VALUES (1)").action == Action.ALLOW  # users are case-sensitive
    assert p.session(None).query("INSERT INTO t VALUES (1)").action == Action.ALLOW
    assert p.judge_sql("INSERT INTO t VALUES (1)", tool="query").rule_id == "mcp-query-no-writes"
    assert p.judge_sql("INSERT INTO t VALUES (1)").action == Action.ALLOW
    assert p.judge_sql("SELECT 1", model="GPT-4o-MINI").rule_id == "small-models"
    assert p.judge_sql("SELECT 1", model="gpt-4o").action == Action.ALLOW
    # content rules (detectors/patterns) look at HTTP bodies, never at SQL
    assert "secrets-in-prompts" not in p.judge_sql("SELECT 'AKIAIOSFODNN7EXAMPLE'").matched


def test_rule_without_matchers_matches_everything():
    p = policy_of('mode = "audit"\n[[rule]]\nid = "log-all"\naction = "audit"\n')
    d = p.judge_sql("SELECT 1")
    assert d.action == Action.AUDIT and d.rule_id == "log-all"


def test_table_and_function_globs():
    p = policy_of("""
[[rule]]
id = "t1"
action = "block"
tables = ["public.users"]

[[rule]]
id = "t2"
action = "block"
targets = ["audit.*"]

[[rule]]
id = "f1"
action = "block"
functions = ["PG_CATALOG.pg_sleep"]
""")
    assert p.judge_sql("SELECT * FROM users").rule_id == "t1"
    assert p.judge_sql("SELECT * FROM PUBLIC.USERS").rule_id == "t1"
    assert p.judge_sql('SELECT * FROM "Users"').rule_id == "t1"           # over-matching is fail-closed
    assert p.judge_sql("SELECT * FROM other.users").action == Action.ALLOW
    assert p.judge_sql("SELECT * FROM audit.log").action == Action.ALLOW  # read, not a target
    assert p.judge_sql("DELETE FROM audit.log WHERE id = 1").rule_id == "t2"
    assert p.judge_sql("DELETE FROM log WHERE id = 1").action == Action.ALLOW  # `log` is not on audit.*
    assert p.session("audit").query("DELETE FROM log WHERE id = 1").rule_id == "t2"  # "$user" schema
    assert p.judge_sql("SELECT pg_sleep(1)").rule_id == "f1"
    assert p.judge_sql("SELECT pg_catalog.pg_sleep(1)").rule_id == "f1"
    assert p.judge_sql("SELECT myschema.pg_sleep(1)").action == Action.ALLOW


def test_limits_ride_along():
    p = policy_of("""
[[rule]]
id = "big-reads"
action = "block"
tables = ["events"]
max_rows = 1000

[[rule]]
id = "session-cap"
action = "audit"
max_bytes = 500
max_session_bytes = 10000
""")
    d = p.judge_sql("SELECT * FROM events")
    assert d.action == Action.ALLOW and d.rule_id is None
    assert d.limits.max_rows == 1000 and d.limits.max_bytes == 500 and d.limits.max_session_bytes == 10000
    assert d.limits.rule_ids == ("big-reads", "session-cap") and d.limits.action == Action.BLOCK
    d = p.judge_sql("SELECT 1")
    assert d.limits.max_rows is None and d.limits.rule_ids == ("session-cap",)


def test_caches_and_stats():
    p = policy_of(RULES)
    judge = p.session("u")
    judge.query("SELECT * FROM t WHERE id = 1")
    s1 = p.cache_stats()
    assert s1["misses"] == 1 and s1["size"] == 1
    for _ in range(5):
        assert judge.query("SELECT * FROM t WHERE id = 1").action == Action.ALLOW
    s2 = p.cache_stats()
    assert s2["hits"] == s1["hits"] + 5 and s2["misses"] == 1
    # same shape, other constant: parsed, but the tree is not walked again
    judge.query("SELECT * FROM t WHERE id = 2")
    s3 = p.cache_stats()
    assert s3["misses"] == 2 and s3["shape_hits"] == s2["shape_hits"] + 1
    # parse failures are cached too
    judge.query("selec 1")
    judge.query("selec 1")
    assert p.cache_stats()["misses"] == 3


def test_cache_is_bounded():
    p = policy_of(RULES, cache_size=50)
    judge = p.session("u")
    for i in range(300):
        judge.query(f"SELECT {i}, 'x{i}'")
        judge.query(f"SELECT * FROM t{i}")
    stats = p.cache_stats()
    assert stats["size"] <= 50 and stats["decisions"] <= 50


def test_constants_that_matter_are_not_shared_by_shape():
    p = policy_of(RULES)
    judge = p.session("u")
    assert judge.query("DELETE FROM t WHERE 1 = 2").action == Action.APPROVE
    assert judge.query("DELETE FROM t WHERE 1 = 1").action == Action.BLOCK
    assert judge.query("DELETE FROM t WHERE 'f'").action == Action.APPROVE
    assert judge.query("DELETE FROM t WHERE 't'").action == Action.BLOCK
    p2 = policy_of('[[rule]]\nid = "r"\naction = "block"\nflags = ["set_role"]\n')
    j2 = p2.session("u")
    assert j2.query("SELECT set_config('work_mem', '1MB', false)").action == Action.ALLOW
    assert j2.query("SELECT set_config('role', 'x', false)").action == Action.BLOCK
    assert j2.query("SELECT set_config('work_mem', '2MB', false)").action == Action.ALLOW


def test_decision_to_dict():
    p = policy_of(RULES)
    d = p.judge_sql("DELETE FROM t").to_dict()
    assert d["action"] == "block" and d["rule"] == "no-unbounded"
    assert d["statements"][0]["kind"] == "delete"


def test_other_dialects_through_judge_sql():
    p = policy_of(RULES)
    assert p.judge_sql("DELETE FROM `t` WHERE 1", dialect="mysql").rule_id == "no-unbounded"
    assert p.judge_sql("DELETE FROM t WHERE id = 3", dialect="mysql").rule_id == "approve-deletes"
    assert p.judge_sql("SELECT 1", dialect="no-such-dialect").rule_id == "parse-error"


def test_backslashes_cannot_be_judged_without_standard_conforming_strings():
    p = policy_of(RULES)
    judge = p.session("u")
    sql = "SELECT 'a\\'; DELETE FROM t; -- '"
    judge.standard_conforming_strings = False
    d = judge.query(sql)
    assert d.action == Action.BLOCK and d.rule_id == "parse-error"
    assert judge.query("SELECT 1").action == Action.ALLOW
    judge.standard_conforming_strings = True
    assert judge.query("SELECT 'a\\b'").action == Action.ALLOW


@pytest.mark.parametrize("first, second", [
    # PostgreSQL's normalize() turns both into `DO $1` / `... AS $1`: not the same facts
    ("DO 'BEGIN NULL; END'", "DO 'BEGIN DELETE FROM t; END'"),
    ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'select 1'",
     "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'delete from t'"),
    ("CREATE FUNCTION f(a varchar(10)) RETURNS void LANGUAGE sql AS 'select 1'",
     "CREATE FUNCTION f(a varchar(10)) RETURNS void LANGUAGE sql AS 'delete from t'"),
    # same $n, different kinds of constant
    ("DELETE FROM t WHERE id + 1 = id + 'x'", "DELETE FROM t WHERE id + 1 = id + 1"),
    ("UPDATE t SET a = 1 WHERE 1 = 'a'", "UPDATE t SET a = 1 WHERE 1 = 1"),
])
def test_literal_variants_are_never_judged_by_a_cached_sibling(first, second):
    p = policy_of(RULES)
    judge = p.session("u")
    judge.query(first)
    judge.query(first.replace("'", "'", 1))
    assert judge.query(second).action == Action.BLOCK, second
    assert policy_of(RULES).session("u").query(second).action == Action.BLOCK


def test_limit_all_and_limit_n_differ_through_caches():
    p = policy_of(RULES)
    judge = p.session("u")
    assert not judge.query("SELECT * FROM t LIMIT ALL").facts[0].has_limit
    assert judge.query("SELECT * FROM t LIMIT 5").facts[0].has_limit
    assert not judge.query("SELECT * FROM t LIMIT ALL ").facts[0].has_limit
    assert judge.query("SELECT * FROM t LIMIT NULL").facts[0].has_limit is False


def test_normalized_sharing_for_plain_statements():
    p = policy_of(RULES)
    judge = p.session("u")
    judge.query("SELECT abalance FROM pgbench_accounts WHERE aid = 1")
    before = p.cache_stats()
    judge.query("SELECT abalance FROM pgbench_accounts WHERE aid = 2")
    after = p.cache_stats()
    assert after["shape_hits"] == before["shape_hits"] + 1


def test_declare_cursor_judges_its_query_and_carries_its_limits():
    policy = Policy(parse_rules('[[rule]]\nid = "cap"\naction = "block"\nstatements = ["select"]\n'
                                'tables = ["users"]\nmax_rows = 10\n\n[[rule]]\nid = "no-drop"\n'
                                'action = "block"\nstatements = ["drop"]\n'))
    judge = policy.session("alice")
    declare = judge.query("DECLARE c CURSOR WITH HOLD FOR SELECT * FROM users")
    assert declare.allowed and declare.limits.max_rows == 10
    assert [(s.kind, s.name, "cursor" in s.flags) for s in declare.facts][0] == ("other", "c", True)
    fetch = judge.query("FETCH 100 FROM c")
    assert [(s.name, "fetch" in s.flags) for s in fetch.facts] == [("c", True)]
    # a cursor over a statement a rule forbids is forbidden like the statement itself
    assert judge.query("DECLARE d CURSOR FOR SELECT 1 FROM users; DROP TABLE users").blocked
