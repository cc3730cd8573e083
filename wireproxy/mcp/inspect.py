"""MCP messages judged and masked, whatever carries them (HTTP POST bodies, SSE events, stdio lines).

    inspector = McpInspector(rules, user="agent-7", record=recorder.record)
    verdict = inspector.client_message(message)    # a JSON-RPC message from the MCP client
    verdict.decision, verdict.reply                # reply: answer the client with it, forward nothing
    inspector.server_message(message)              # from the server: filtered and masked copy

`tools/call` is judged by tool name and arguments (content rules: `tools`, `detectors`,
`patterns`, `users`), and, for a tool that `[[tool]]` declares, its SQL argument by the SQL
rules (`policy.judge_sql` with the tool's dialect): the most restrictive decision wins. A
blocked call is answered as a tool result with `isError: true` whose text names the rule, so
the agent sees why. `tools/list` results lose the tools a rule blocks by name. Every string
the server sends (tool results: text content and structuredContent; notifications) is masked
by the `[[mask]]` detectors. Each tools/call is recorded with its decision and masked result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from protocols.http import jsonrpc
from wireproxy.policy import Action, Decision

from ..http.content import ALLOW, ContentJudge, strongest
from ..http.jsonwalk import map_strings, text_of

RECORD_VALUE_CHARS = 16384


class Rules(Protocol):
    """What the inspector needs of the live rules (the HTTP listener's RuleBook view)."""

    policy: Any                                  # wireproxy.policy.Policy
    judge: ContentJudge
    mask_text: Callable[[str], str] | None


@dataclass
class ToolVerdict:
    decision: Decision = ALLOW
    reply: dict | None = None                    # answer this instead of forwarding
    tool: str | None = None
    statement: str = ""                          # what is held, for an approval request

    @property
    def held(self) -> bool:
        return self.decision.action == Action.APPROVE and self.reply is None


@dataclass
class _Pending:
    method: str
    record: dict = field(default_factory=dict)


def blocked_text(decision: Decision) -> str:
    return decision.client_message()


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > RECORD_VALUE_CHARS:
        return value[:RECORD_VALUE_CHARS] + f"... ({len(value)} chars)"
    return value


class McpInspector:
    def __init__(self, rules: Rules, *, user: str | None, record: Callable[[dict], None] | None = None,
                 groups: frozenset[str] = frozenset()):
        self.rules = rules
        self.user = user
        self.groups = groups                 # the identity's groups, for rules' `groups`
        self.record = record
        self.pending: dict[Any, _Pending] = {}

    def _mask(self, value: Any) -> Any:
        mask_text = self.rules.mask_text
        return value if mask_text is None else map_strings(value, mask_text)[0]

    # -- from the client ---------------------------------------------------------------------

    def client_message(self, message: dict) -> ToolVerdict:
        if jsonrpc.kind(message) != "request":
            return ToolVerdict()
        method = message.get("method")
        ident = message.get("id")
        if method != "tools/call":
            if method == "tools/list":
                self.pending[_key(ident)] = _Pending("tools/list")
            return ToolVerdict()
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        tool = params.get("name") if isinstance(params.get("name"), str) else ""
        arguments = params.get("arguments") if params.get("arguments") is not None else {}
        verdict = self.judge_call(tool, arguments)
        record = {"protocol": "mcp", "method": "tools/call", "tool": tool,
                  "arguments": _clip_tree(self._mask(arguments)), "decision": str(verdict.decision.action),
                  "rules": list(verdict.decision.matched)}
        if verdict.decision.action == Action.BLOCK:
            verdict.reply = jsonrpc.tool_error_result(ident, blocked_text(verdict.decision))
            record["result"] = verdict.reply["result"]
            self._record(record)
        else:
            self.pending[_key(ident)] = _Pending("tools/call", record)
        return verdict

    def judge_call(self, tool: str, arguments: Any) -> ToolVerdict:
        rules = self.rules
        decision = rules.judge.judge(text_of(arguments), user=self.user, tool=tool, groups=self.groups)
        statement = f"{tool}({text_of(arguments)})"
        spec = rules.policy.ruleset.tool(tool)
        if spec is not None and isinstance(arguments, dict):
            sql_texts = list(_sql_texts(arguments.get(spec.sql_argument)))
            for sql in sql_texts:
                sql_decision = rules.policy.judge_sql(sql, dialect=spec.dialect, user=self.user, tool=tool,
                                                      groups=self.groups)
                decision = strongest(decision, sql_decision)
            if sql_texts:
                statement = "\n".join(sql_texts)
        if rules.mask_text is not None:
            statement = rules.mask_text(statement)
        return ToolVerdict(decision, None, tool, statement)

    def answer_held(self, message: dict, verdict: ToolVerdict, approved: bool, why: str) -> dict | None:
        """After an approval: None to forward the call, or the isError reply to send."""
        pending = self.pending.get(_key(message.get("id")))
        if pending is not None:
            pending.record["approval"] = {"outcome": "approved" if approved else "denied", "reason": why}
        if approved:
            return None
        self.pending.pop(_key(message.get("id")), None)
        reply = jsonrpc.tool_error_result(message.get("id"), why)
        if pending is not None:
            pending.record["result"] = reply["result"]
            self._record(pending.record)
        return reply

    # -- from the server ---------------------------------------------------------------------

    def server_message(self, message: Any) -> Any:
        if not isinstance(message, dict):
            return self._mask(message)
        out = dict(message)
        for key in ("result", "params", "error"):
            if key in out:
                out[key] = self._mask(out[key])
        if jsonrpc.kind(message) != "response":
            return out
        pending = self.pending.pop(_key(message.get("id")), None)
        if pending is None:
            return out
        if pending.method == "tools/list" and isinstance(out.get("result"), dict):
            out["result"] = self._filter_tools(out["result"])
        elif pending.method == "tools/call":
            result = out.get("result")
            pending.record["result"] = _clip_tree(result if result is not None else out.get("error"))
            if isinstance(result, dict) and result.get("isError"):
                pending.record["is_error"] = True
            self._record(pending.record)
        return out

    def server_batch(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.server_message(m) for m in value]
        return self.server_message(value)

    def _filter_tools(self, result: dict) -> dict:
        tools = result.get("tools")
        if not isinstance(tools, list):
            return result
        judge = self.rules.judge
        def allowed(t) -> bool:
            return not isinstance(t, dict) or judge.tool_allowed(str(t.get("name", "")), user=self.user,
                                                                 groups=self.groups)
        shown = [t for t in tools if allowed(t)]
        if len(shown) != len(tools):
            hidden = [t.get("name") for t in tools if isinstance(t, dict) and t not in shown]
            self._record({"protocol": "mcp", "method": "tools/list", "hidden": hidden, "shown": len(shown)})
        return dict(result, tools=shown)

    def _record(self, entry: dict) -> None:
        if self.record is not None:
            self.record(entry)


def _key(ident: Any) -> Any:
    return ident if isinstance(ident, (str, int)) else repr(ident)


def _sql_texts(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                yield item


def _clip_tree(value: Any) -> Any:
    return map_strings(value, _clip)[0]
