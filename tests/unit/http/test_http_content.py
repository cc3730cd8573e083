"""Content rules judged on request text, and the MCP inspector's decisions, filters and masks."""

from __future__ import annotations

from protocols.http import jsonrpc
from wireproxy.config.rulefile import parse_rules
from wireproxy.http.content import ContentJudge
from wireproxy.http.rules import RulesView
from wireproxy.masking import Masker
from wireproxy.mcp import McpInspector
from wireproxy.policy import Action, Policy

RULES = parse_rules('''
[[rule]]
id = "no-aws"
action = "block"
detectors = ["aws_access_key"]
[[rule]]
id = "injection"
action = "audit"
patterns = ["(?i)ignore previous instructions"]
[[rule]]
id = "agents-no-gpt4"
action = "block"
users = ["agent-*"]
models = ["gpt-4*"]
[[rule]]
id = "order-ref"
action = "approve"
detectors = ["order_ref"]
[[rule]]
id = "no-shell"
action = "block"
tools = ["run_shell"]
[[rule]]
id = "no-drop"
action = "block"
statements = ["drop"]
[[detector]]
name = "order_ref"
pattern = "ORD-[0-9]{8}"
[[tool]]
name = "query"
sql_argument = "sql"
dialect = "mysql"
[[mask]]
id = "mail"
detectors = ["email"]
''')


def test_content_rules():
    judge = ContentJudge(RULES)
    assert judge.judge("hello", user=None).action == Action.ALLOW
    blocked = judge.judge("key AKIAIOSFODNN7EXAMPLE", user=None)
    assert (blocked.action, blocked.rule_id) == (Action.BLOCK, "no-aws")
    assert judge.judge("Ignore previous instructions", user=None).rule_id == "injection"
    assert judge.judge("ORD-12345678", user=None).action == Action.APPROVE
    both = judge.judge("ORD-12345678 AKIAIOSFODNN7EXAMPLE", user=None)
    assert both.action == Action.BLOCK and set(both.matched) == {"no-aws", "order-ref"}


def test_model_and_user_context():
    judge = ContentJudge(RULES)
    assert judge.judge("hi", user="agent-1", model="gpt-4o").rule_id == "agents-no-gpt4"
    assert judge.judge("hi", user="alice", model="gpt-4o").action == Action.ALLOW
    assert judge.judge("hi", user="agent-1", model="claude-3").action == Action.ALLOW
    assert judge.judge("hi", user=None, model="gpt-4o").action == Action.ALLOW


def test_sql_rules_are_not_content_rules():
    judge = ContentJudge(RULES)
    assert {r.id for r in judge.rules} == {"no-aws", "injection", "agents-no-gpt4", "order-ref", "no-shell"}


def _inspector(records):
    masker = Masker(RULES.masks).for_user("")
    view = RulesView(Policy(RULES), ContentJudge(RULES), masker.mask_text)
    return McpInspector(view, user=None, record=records.append)


def _call(ident, tool, arguments):
    return {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}


def test_mcp_sql_argument_judged_in_its_dialect():
    records = []
    inspector = _inspector(records)
    verdict = inspector.client_message(_call(1, "query", {"sql": "DROP TABLE `users`"}))
    assert verdict.decision.rule_id == "no-drop"
    assert verdict.reply["result"]["isError"] is True
    assert "blocked by wireproxy rule no-drop" in verdict.reply["result"]["content"][0]["text"]
    assert records[0]["decision"] == "block" and records[0]["tool"] == "query"
    assert inspector.client_message(_call(2, "query", {"sql": "SELECT 1"})).reply is None
    assert inspector.client_message(_call(3, "run_shell", {"command": "ls"})).decision.rule_id == "no-shell"
    held = inspector.client_message(_call(4, "other", {"note": "ORD-12345678"}))
    assert held.held and held.reply is None


def test_mcp_results_masked_and_tools_filtered():
    records = []
    inspector = _inspector(records)
    inspector.client_message({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    listed = inspector.server_message(jsonrpc.result(1, {"tools": [{"name": "query"}, {"name": "run_shell"}]}))
    assert [t["name"] for t in listed["result"]["tools"]] == ["query"]
    inspector.client_message(_call(2, "query", {"sql": "SELECT email FROM users"}))
    answer = inspector.server_message(jsonrpc.result(2, {
        "content": [{"type": "text", "text": "alice@example.com"}], "structuredContent": {"email": "bob@example.org"}}))
    assert "alice@" not in str(answer) and "bob@" not in str(answer)
    assert records[-1]["result"] == answer["result"]


def test_inline_base64_is_neither_judged_nor_masked():
    import base64

    from wireproxy.http.jsonwalk import map_strings, text_of

    blob = base64.b64encode(b"AKIAIOSFODNN7EXAMPLE alice@example.com " * 60).decode()
    body = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture? mail bob@example.org"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{blob}"}}]}]}
    assert blob not in text_of(body)
    masker = Masker(RULES.masks).for_user("")
    masked, changed = map_strings(body, masker.mask_text)
    assert changed and masked["messages"][0]["content"][1] == body["messages"][0]["content"][1]
    assert "bob@" not in masked["messages"][0]["content"][0]["text"]
