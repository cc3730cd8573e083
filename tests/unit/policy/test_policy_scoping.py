"""Per-identity rules: `users`, `groups` and `except_users` on [[rule]], and caches that never
hand one identity's decision to another (same name, other groups)."""

from __future__ import annotations

import pytest

from wireproxy.auth import Identity
from wireproxy.config.rulebook import RuleBook, as_identity
from wireproxy.config.rulefile import ConfigError, parse_rules
from wireproxy.policy import Action, Policy

SCOPED = '''
[[rule]]
id = "interns-read-only"
action = "block"
groups = ["interns", "contractor-*"]
statements = ["insert", "update", "delete"]

[[rule]]
id = "no-drop-but-dba"
action = "block"
statements = ["drop"]
except_users = ["dba-*"]

[[rule]]
id = "ci-oncall-ddl"
action = "approve"
users = ["ci-*"]
groups = ["oncall"]
except_users = ["ci-root"]
statements = ["create"]
'''

INSERT = "INSERT INTO t VALUES (1)"


def err(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_rules(text, "rules.toml")
    return str(info.value)


def test_loaded_as_globs():
    rules = {r.id: r for r in parse_rules(SCOPED).rules}
    assert rules["interns-read-only"].groups.globs == ("interns", "contractor-*")
    assert rules["interns-read-only"].users is None and rules["interns-read-only"].except_users is None
    assert rules["no-drop-but-dba"].except_users.globs == ("dba-*",)
    assert rules["ci-oncall-ddl"].users.globs == ("ci-*",)
    assert parse_rules('[[rule]]\nid = "a"\naction = "block"\ngroups = []\n').rules[0].groups is None


@pytest.mark.parametrize("key", ["groups", "except_users", "users"])
@pytest.mark.parametrize("value, words", [('"ops"', "must be a list"),
                                          ('[1]', "must be a list of"),
                                          ('["ok", " "]', "must not contain empty strings")])
def test_bad_values_name_file_line_and_key(key, value, words):
    message = err(f'[[rule]]\nid = "a"\naction = "block"\n{key} = {value}\n')
    assert message.startswith("rules.toml:4: ") and key in message and words in message


def test_a_typo_is_refused_with_a_hint():
    message = err('[[rule]]\nid = "a"\naction = "block"\ngroup = ["ops"]\n')
    assert message.startswith("rules.toml:4: ") and "unknown key" in message and "groups" in message


@pytest.mark.parametrize("user, groups, sql, rule", [
    ("ann", {"interns"}, INSERT, "interns-read-only"),
    ("ann", {"staff", "contractor-acme"}, INSERT, "interns-read-only"),     # any group, globs
    ("ann", {"staff"}, INSERT, None),
    ("ann", set(), INSERT, None),
    (None, {"interns"}, INSERT, "interns-read-only"),                       # --groups alone
    ("ann", set(), "DROP TABLE t", "no-drop-but-dba"),
    ("dba-1", set(), "DROP TABLE t", None),                                 # excepted
    (None, set(), "DROP TABLE t", "no-drop-but-dba"),                       # unnamed: excepted from nothing
    ("", set(), "DROP TABLE t", "no-drop-but-dba"),
    ("ci-7", {"oncall"}, "CREATE TABLE x (a int)", "ci-oncall-ddl"),        # users AND groups
    ("ci-7", {"dev"}, "CREATE TABLE x (a int)", None),
    ("bob", {"oncall"}, "CREATE TABLE x (a int)", None),
    ("ci-root", {"oncall"}, "CREATE TABLE x (a int)", None),                # AND not excepted
])
def test_who_the_rules_hold_for(user, groups, sql, rule):
    policy = Policy(parse_rules(SCOPED))
    for decision in (policy.session(user, frozenset(groups)).query(sql),
                     policy.judge_sql(sql, user=user, groups=frozenset(groups))):
        assert decision.rule_id == rule
        assert (decision.action == Action.ALLOW) == (rule is None)


def test_decision_cache_keys_hold_the_groups():
    """The same name and text, first with a group a rule names, then without, then again: each
    judged for its own groups, in both orders, through every cache (text, shape, context)."""
    policy = Policy(parse_rules(SCOPED))
    for order in ([{"interns"}, set()], [set(), {"interns"}]):
        for groups in order * 2:
            expected = Action.BLOCK if groups else Action.ALLOW
            judge = policy.session("ann", frozenset(groups))
            assert judge.query(INSERT).action == expected
            assert judge.query("INSERT INTO t VALUES (2)").action == expected   # same shape
            assert judge.parse(INSERT, name="s1").action == expected
            assert policy.judge_sql(INSERT, user="ann", groups=frozenset(groups)).action == expected
        policy.ruleset = policy.ruleset                 # empty every cache for the other order


AUDITED = parse_rules('''
[[rule]]
id = "audit-interns-writes"
action = "audit"
groups = ["interns"]
statements = ["insert"]

[[rule]]
id = "interns-no-lo"
action = "block"
groups = ["interns"]
functions = ["lo_export"]
''')


def test_prepared_statements_and_fastpath_are_judged_for_the_groups():
    policy = Policy(AUDITED)
    for groups, expected in (({"interns"}, Action.AUDIT), (set(), Action.ALLOW), ({"interns"}, Action.AUDIT)):
        judge = policy.session("ann", frozenset(groups))
        assert judge.query("PREPARE w AS INSERT INTO t VALUES (1)").action == expected
        assert judge.query("EXECUTE w").action == expected
        assert judge.function("pg_catalog.lo_export").action == (Action.BLOCK if groups else Action.ALLOW)


def test_routine_bodies_are_judged_for_the_groups():
    policy = Policy(parse_rules(SCOPED))
    row = ("add_row", "public", "add_row", "f", "sql", "",
           "CREATE FUNCTION public.add_row() RETURNS void LANGUAGE sql AS $f$INSERT INTO t VALUES (1)$f$",
           "", False, None)
    for groups, expected in (({"interns"}, Action.BLOCK), (set(), Action.ALLOW), ({"interns"}, Action.BLOCK)):
        judge = policy.session("ann", frozenset(groups))
        assert judge.query("SELECT add_row()").routines_needed == ("add_row",)
        judge.learn_routines(["add_row"], [row])
        assert judge.query("SELECT add_row()").action == expected


def test_rulebook_takes_an_identity_or_a_name(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(SCOPED + '[[mask]]\nid = "m"\ncolumns = ["email"]\ngroups = ["interns"]\n')
    book = RuleBook([path])
    intern = Identity("ann", frozenset({"interns"}), "scram")
    assert book.session_judge(intern).query(INSERT).action == Action.BLOCK
    assert book.session_judge(intern).groups == frozenset({"interns"})
    assert book.session_judge("ann").query(INSERT).allowed                 # a name: no groups
    assert book.session_judge(Identity("ann")).query(INSERT).allowed
    assert book.session_judge(None).user is None
    assert book.session_masker(intern) is not None
    assert book.session_masker("ann") is None and book.session_masker(Identity("ann", frozenset({"staff"}))) is None
    assert as_identity("bob") == Identity("bob") and as_identity(None) == Identity("")
    with pytest.raises(TypeError):
        as_identity(42)
