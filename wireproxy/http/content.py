"""Judging HTTP request content (prompts, tool arguments) against the rule files' content rules.

    judge = ContentJudge(ruleset)
    decision = judge.judge(text, user="agent-7", groups=frozenset({"agents"}), model="gpt-4o", tool=None)

Which rules judge here: rules with `detectors` or `patterns` (they hold when a detector finds
something in the text or a pattern matches it), and rules whose only matchers are `models`,
`tools` and `users` (they hold on the context alone: a model that may not be used, a tool that
may not be called). `users`, `groups`, `except_users`, `models` and `tools` narrow every rule to
its context, as in the SQL engine (the groups are the `[[http.client]]` entry's). SQL matchers
and max_* limits are the SQL engine's. The most restrictive action wins, as everywhere
(block > approve > audit > allow); an audit-mode file only audits.
"""

from __future__ import annotations

from wireproxy.config.rulefile import Rule, RuleSet
from wireproxy.masking import Detectors
from wireproxy.policy import Action, Decision

ALLOW = Decision(Action.ALLOW)


def is_http_rule(rule: Rule) -> bool:
    if rule.is_limit or rule.has_sql_matchers:
        return False
    return rule.is_content or rule.models is not None or rule.tools is not None


class ContentJudge:
    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        self.rules = tuple(r for r in ruleset.rules if is_http_rule(r))
        self.tool_rules = tuple(r for r in self.rules if r.tools is not None and not r.is_content)
        names = dict.fromkeys(name for r in self.rules for name in r.detectors)
        self._detectors = Detectors(names, ruleset.detectors) if names else None

    def judge(self, text: str, *, user: str | None, model: str | None = None,
              tool: str | None = None, groups: frozenset[str] = frozenset()) -> Decision:
        candidates = [r for r in self.rules if r.matches_context(user, tool, model, groups)]
        if not candidates:
            return ALLOW
        found: set[str] | None = None
        matched: list[Rule] = []
        for rule in candidates:
            if not rule.is_content:
                matched.append(rule)
                continue
            if rule.detectors:
                if found is None:
                    found = self._found(text)
                if found.intersection(rule.detectors):
                    matched.append(rule)
                    continue
            if any(p.search(text) for p in rule.patterns):
                matched.append(rule)
        return decide(matched)

    def tool_allowed(self, tool: str, *, user: str | None, groups: frozenset[str] = frozenset()) -> bool:
        """Whether tools/list may show `tool`: no rule on its name alone blocks it."""
        return all(r.effective_action != Action.BLOCK for r in self.tool_rules
                   if r.matches_context(user, tool, None, groups))

    def _found(self, text: str) -> set[str]:
        if self._detectors is None or not text:
            return set()
        return {name for _, _, name in self._detectors.find(text)}


def decide(matched: list[Rule]) -> Decision:
    if not matched:
        return ALLOW
    best = matched[0]
    would = max(r.action for r in matched)
    for rule in matched[1:]:
        if rule.effective_action > best.effective_action or (
                rule.effective_action == best.effective_action and rule.action > best.action):
            best = rule
    return Decision(best.effective_action, best.id, best.message, tuple(r.id for r in matched), None, would)


def strongest(*decisions: Decision) -> Decision:
    """The most restrictive of several decisions (the first wins ties)."""
    best = decisions[0]
    for d in decisions[1:]:
        if d.action > best.action:
            best = d
    return best
