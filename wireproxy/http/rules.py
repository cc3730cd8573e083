"""The live rules as an HTTP listener uses them: the policy, the content judge and the masks
for one client (its name and groups), rebuilt when the RuleBook reloads (the judge is cached
per rule set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from wireproxy.config.rulefile import RuleSet
from wireproxy.policy import Policy

from .content import ContentJudge


@dataclass
class RulesView:
    policy: Policy
    judge: ContentJudge
    mask_text: Callable[[str], str] | None

    @property
    def inspects(self) -> bool:
        """Anything to judge or mask (a [[tool]] alone makes MCP calls worth judging)."""
        return self.mask_text is not None or bool(self.judge.rules) or bool(self.policy.ruleset.rules)


class HttpRules:
    def __init__(self, book=None):
        self.book = book                          # wireproxy.config.rulebook.RuleBook or None
        self._empty = Policy(RuleSet())
        self._judge: tuple[int, ContentJudge] | None = None

    def view(self, user: str | None, groups: frozenset[str] = frozenset()) -> RulesView:
        policy = self.book.policy if self.book is not None else self._empty
        ruleset = policy.ruleset
        if self._judge is None or self._judge[0] != id(ruleset):
            self._judge = (id(ruleset), ContentJudge(ruleset))
        masker = self.book.masker if self.book is not None else None
        user_masker = masker.for_user(user or "", groups) if masker is not None else None
        return RulesView(policy, self._judge[1], user_masker.mask_text if user_masker is not None else None)
