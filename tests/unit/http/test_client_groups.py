"""Groups on the HTTP side: `[[http.client]] groups`, and content rules, MCP tool rules, SQL
tool arguments and masks judged with the calling client's groups."""

from __future__ import annotations

import hashlib

import pytest

from wireproxy.config import ConfigError, load_config
from wireproxy.config.rulebook import RuleBook
from wireproxy.config.rulefile import parse_rules
from wireproxy.http.content import ContentJudge
from wireproxy.http.rules import HttpRules
from wireproxy.mcp import McpInspector
from wireproxy.policy import Action

RULES = '''
[[rule]]
id = "interns-no-gpt4"
action = "block"
groups = ["interns"]
models = ["gpt-4*"]

[[rule]]
id = "secrets-except-sec"
action = "block"
detectors = ["aws_access_key"]
except_users = ["sec-*"]

[[rule]]
id = "interns-no-shell"
action = "block"
groups = ["interns"]
tools = ["run_shell"]

[[rule]]
id = "interns-no-delete"
action = "block"
groups = ["interns"]
statements = ["delete"]

[[tool]]
name = "query"
sql_argument = "sql"

[[mask]]
id = "mail-for-interns"
detectors = ["email"]
groups = ["interns"]
'''
INTERNS = frozenset({"interns"})


def test_content_judge_uses_the_groups():
    judge = ContentJudge(parse_rules(RULES))
    assert judge.judge("hi", user="a", groups=INTERNS, model="gpt-4o").rule_id == "interns-no-gpt4"
    assert judge.judge("hi", user="a", model="gpt-4o").action == Action.ALLOW
    assert judge.judge("AKIAIOSFODNN7EXAMPLE", user="a").rule_id == "secrets-except-sec"
    assert judge.judge("AKIAIOSFODNN7EXAMPLE", user="sec-1").action == Action.ALLOW
    assert judge.judge("AKIAIOSFODNN7EXAMPLE", user=None).action == Action.BLOCK
    assert not judge.tool_allowed("run_shell", user="a", groups=INTERNS)
    assert judge.tool_allowed("run_shell", user="a")


def test_views_and_the_mcp_inspector_use_the_groups(tmp_path):
    (tmp_path / "rules.toml").write_text(RULES)
    rules = HttpRules(RuleBook([tmp_path / "rules.toml"]))
    intern, other = rules.view("a", INTERNS), rules.view("a")
    assert intern.mask_text("mail bob@example.com") != "mail bob@example.com"
    assert other.mask_text is None

    def call(view, groups, tool, arguments):
        inspector = McpInspector(view, user="a", groups=groups)
        return inspector.judge_call(tool, arguments).decision

    assert call(intern, INTERNS, "query", {"sql": "DELETE FROM t WHERE id = 1"}).rule_id == "interns-no-delete"
    assert call(other, frozenset(), "query", {"sql": "DELETE FROM t WHERE id = 1"}).action == Action.ALLOW
    assert call(intern, INTERNS, "run_shell", {}).rule_id == "interns-no-shell"
    assert call(other, frozenset(), "run_shell", {}).action == Action.ALLOW
    listed = {"tools": [{"name": "run_shell"}, {"name": "query"}]}
    shown = McpInspector(intern, user="a", groups=INTERNS)._filter_tools(listed)
    assert [t["name"] for t in shown["tools"]] == ["query"]
    assert McpInspector(other, user="a")._filter_tools(listed) == listed


def _config(tmp_path, client: str):
    digest = hashlib.sha256(b"k").hexdigest()
    path = tmp_path / "wireproxy.toml"
    path.write_text(f'[[http]]\nlisten = "127.0.0.1:1"\nupstream = "http://x"\n'
                    f'[[http.client]]\nname = "a"\nkey_sha256 = "{digest}"\n{client}\n')
    return load_config(path)


def test_client_groups_in_the_config(tmp_path):
    assert _config(tmp_path, 'groups = ["interns", "eu", "interns"]').http[0].clients[0].groups == ("interns", "eu")
    assert _config(tmp_path, "").http[0].clients[0].groups == ()


@pytest.mark.parametrize("value, problem", [('"interns"', "must be a list"), ('[""]', "not a group name"),
                                            ('[" x"]', "not a group name")])
def test_client_groups_errors(tmp_path, value, problem):
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, f"groups = {value}")
    assert problem in str(err.value) and "wireproxy.toml:7:" in str(err.value) and "groups" in str(err.value)


def test_the_proxy_hands_the_groups_to_the_client_key(tmp_path):
    from wireproxy.http.proxy import HttpProxy

    config = _config(tmp_path, 'groups = ["interns"]')
    proxy = HttpProxy(config.http[0])
    assert proxy.keys[0].groups == INTERNS
