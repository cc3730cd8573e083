"""The rule-file keys of issue 11 and of approvals: loaded, carried, validated at file:line."""

import argparse
import json

import pytest

from wireproxy.cli import check as check_cmd
from wireproxy.config.rulefile import ConfigError, load_rules, parse_rules
from wireproxy.policy import Action, Policy, fingerprint


def err(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_rules(text, "rules.toml")
    return str(info.value)


def test_approval_keys_reach_the_decision():
    rs = parse_rules('[[rule]]\nid = "hold"\naction = "approve"\nstatements = ["delete"]\n'
                     'approvers = ["alice", "group:oncall"]\ntimeout = "90s"\n')
    assert rs.rules[0].approvers == ("alice", "group:oncall") and rs.rules[0].approval_timeout == 90.0
    d = Policy(rs).judge_sql("DELETE FROM t WHERE id = 1")
    assert d.action == Action.APPROVE and d.approvers == ("alice", "group:oncall") and d.approval_timeout == 90.0
    assert d.to_dict()["approvers"] == ["alice", "group:oncall"]


@pytest.mark.parametrize("value,seconds", [('"90s"', 90), ('"5m"', 300), ('"1h"', 3600), ("45", 45),
                                           ("2.5", 2.5), ('"120"', 120)])
def test_timeout_spellings(value, seconds):
    rs = parse_rules(f'[[rule]]\nid = "a"\naction = "approve"\ntimeout = {value}\n')
    assert rs.rules[0].approval_timeout == seconds


def test_defaults_for_approve_rules():
    d = Policy(parse_rules('[[rule]]\nid = "a"\naction = "approve"\n')).judge_sql("SELECT 1")
    assert d.approvers == () and d.approval_timeout == 300.0


@pytest.mark.parametrize("text,line,words", [
    ('[[rule]]\nid = "a"\naction = "block"\napprovers = ["x"]\n', 4, "only allowed on rules with action"),
    ('[[rule]]\nid = "a"\naction = "block"\ntimeout = "5m"\n', 4, "only allowed on rules with action"),
    ('[[rule]]\nid = "a"\naction = "approve"\ntimeout = "5 minutes"\n', 4, "positive duration"),
    ('[[rule]]\nid = "a"\naction = "approve"\ntimeout = 0\n', 4, "positive duration"),
    ('[[rule]]\nid = "a"\naction = "approve"\ntimeout = true\n', 4, "must be a string or an integer"),
    ('[[rule]]\nid = "a"\naction = "approve"\napprovers = ["two words"]\n', 4, "not a user name"),
    ('[[rule]]\nid = "a"\naction = "approve"\napprovers = "alice"\n', 4, "must be a list"),
    ('[[rule]]\nid = "a"\naction = "block"\nreads_all = true\n', 4, "needs sensitive_tables"),
    ('[[rule]]\nid = "a"\naction = "block"\ncopies = false\n', 4, "true or a list of table globs"),
    ('[[rule]]\nid = "a"\naction = "block"\ncopies = []\n', 4, "non-empty list"),
    ('[[rule]]\nid = "a"\naction = "block"\ngranted_roles = [""]\n', 4, "non-empty list of role globs"),
    ('[[rule]]\nid = "a"\naction = "block"\nwhere_checks = ["value_range"]\n', 4, "only applies with without_where"),
    ('[[rule]]\nid = "a"\naction = "block"\nwithout_where = true\nwhere_checks = ["x"]\n', 5, "unknown check 'x'"),
    ('sensitive_tables = "users"\n', 1, "must be a list"),
    ('sensitive_tables = ["users", ""]\n', 1, "empty strings"),
    ('sensitive_table = ["users"]\n', 1, "unknown key"),
])
def test_mistakes_name_file_and_line(text, line, words):
    message = err(text)
    assert message.startswith(f"rules.toml:{line}:") and words in message, message


def test_sensitive_tables_merge_across_files(tmp_path):
    a = tmp_path / "a.toml"
    b = tmp_path / "b.toml"
    a.write_text('[[rule]]\nid = "r"\naction = "block"\nreads_all = true\n')
    b.write_text('sensitive_tables = ["vault.*"]\n')
    rs = load_rules([a, b])
    assert rs.sensitive_tables == ("vault.*",)
    p = Policy(rs)
    assert p.judge_sql("SELECT * FROM vault.keys").rule_id == "r"
    assert p.judge_sql("SELECT * FROM vault.keys WHERE id = 1").action == Action.ALLOW


def test_granted_roles_and_copies_with_globs():
    p = Policy(parse_rules('[[rule]]\nid = "g"\naction = "block"\ngranted_roles = ["admin_*"]\n'
                           '[[rule]]\nid = "c"\naction = "audit"\ncopies = ["hr.*"]\n'))
    assert p.judge_sql("GRANT admin_all TO bob").rule_id == "g"
    assert p.judge_sql("GRANT SELECT ON t TO admin_all").action == Action.ALLOW   # a grantee, not granted
    assert p.judge_sql("CREATE TABLE x AS SELECT * FROM hr.pay").rule_id == "c"


def test_fingerprint_is_modulo_constants():
    assert fingerprint("SELECT * FROM t WHERE id = 1") == fingerprint("select *  from t where id=2")
    assert fingerprint("SELECT * FROM t WHERE id = 1") != fingerprint("SELECT * FROM u WHERE id = 1")
    bad = fingerprint("SELEC  1 frm")
    assert bad == fingerprint("SELEC 1\nfrm") and bad.startswith("text:") and bad != fingerprint("SELEC 2 frm")


def run_check(capsys, *argv):
    parser = argparse.ArgumentParser(prog="wireproxy")
    check_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["check", *argv])
    code = args.func(args)
    out, err_ = capsys.readouterr()
    return code, out, err_


def test_check_explain_shows_the_facts(capsys):
    code, out, _ = run_check(capsys, "--explain",
                             "CREATE TABLE x AS SELECT * FROM users; GRANT pg_read_all_data TO bob; SELECT my_fn()")
    assert code == 1
    assert "explain:" in out and "copies: users" in out and "grants: pg_read_all_data" in out
    assert "my_fn (routine: body judged in band)" in out and "rules matched: approve-sensitive-copy" in out


def test_check_explain_json(capsys):
    code, out, _ = run_check(capsys, "--explain", "--json", "DELETE FROM t WHERE id IN (SELECT id FROM t)")
    data = json.loads(out)
    assert code == 1 and data["rule"] == "no-unbounded-write"
    (entry,) = data["explain"]
    assert entry["writes"] == ["t"] and "compared with itself" in entry["where"]
    assert entry["matched"] == ["no-unbounded-write"]
