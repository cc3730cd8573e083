"""One session's knowledge of routine bodies, and the verdicts they give calls (routines.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterable

from wireproxy.policy.decision import Action, Decision
from wireproxy.policy.facttypes import SqlParseError, StatementFacts
from wireproxy.policy.pgcatalog import is_builtin_function
from wireproxy.policy.routines import (
    MAX_ROUTINE_DEPTH, TRUSTED_OPAQUE, RoutineBody, as_call, body_text, parse_rows)

if TYPE_CHECKING:
    from wireproxy.policy.engine import Policy

ROUTINE_DEPTH = "routine-depth"   # rule id: calls nested deeper than MAX_ROUTINE_DEPTH
_NOTHING = Decision(Action.ALLOW, facts=())


class RoutineBook:
    """Bodies learned from the catalog (by the name as called) and the verdicts they give."""

    __slots__ = ("bodies", "_verdicts", "_version")

    def __init__(self) -> None:
        self.bodies: dict[str, tuple[RoutineBody, ...]] = {}
        self._verdicts: dict[tuple[str, bool], Decision] = {}
        self._version = -1

    def learn(self, names: Iterable[str], rows: Iterable) -> None:
        """Record the rows of routine_lookup_sql(names); names without rows do not exist."""
        self.bodies.update(parse_rows(list(names), rows))
        self._verdicts.clear()

    def review(self, names: tuple[str, ...], policy: "Policy", who: tuple,
               quiet: tuple[str, ...] = ()) -> tuple[tuple[str, ...], Decision]:
        """(names still to look up, the most restrictive verdict of the bodies known so far),
        for `who` = (user, groups): one session's identity, so the verdicts cached here are its own.
        Routines in `quiet` are called where their rows go nowhere (EXPLAIN ANALYZE, PERFORM):
        what their bodies read does not count, what they write does."""
        if self._version != policy.version:   # rules changed: every verdict is stale
            self._verdicts.clear()
            self._version = policy.version
        needed: list[str] = []
        worst = _NOTHING
        for name in names:
            verdict = self._verdict(name, policy, who, 1, frozenset(), needed, name in quiet)
            if verdict.action > worst.action:
                worst = verdict
        return tuple(dict.fromkeys(needed)), worst

    def _verdict(self, name: str, policy, who: tuple, depth: int, seen: frozenset[str], needed: list[str],
                 quiet: bool = False) -> Decision:
        cached = self._verdicts.get((name, quiet))
        if cached is not None:
            return cached
        bodies = self.bodies.get(name)
        if bodies is None:
            needed.append(name)
            return _NOTHING
        if depth > MAX_ROUTINE_DEPTH:
            return Decision(Action.BLOCK, ROUTINE_DEPTH, f"routine {name} calls routines nested deeper "
                            f"than {MAX_ROUTINE_DEPTH} levels: wireproxy cannot judge them", (ROUTINE_DEPTH,))
        before = len(needed)
        worst = _NOTHING
        for body in bodies:
            if body.qualified in seen:   # recursion: this body is being judged already
                continue
            statements, calls = _body_facts(body, name, policy)
            if quiet and not isinstance(statements, SqlParseError):
                statements = tuple(replace(s, reads_all=frozenset()) for s in statements)
            verdict = _judge_body(statements, name, policy, who)
            for callee in calls:
                inner = self._verdict(callee, policy, who, depth + 1, seen | {body.qualified}, needed, quiet)
                if inner.action > verdict.action:
                    verdict = replace(inner, message=f"calls {name}, which {inner.message}")
            if verdict.action > worst.action:
                worst = verdict
        if len(needed) == before:        # complete: no callee still unknown
            self._verdicts[(name, quiet)] = worst
        return worst


def _body_facts(body: RoutineBody, name: str, policy) -> tuple[tuple[StatementFacts, ...] | SqlParseError, tuple[str, ...]]:
    """What calling the body does, and the routines it calls in turn."""
    calls = tuple(c for c in body.calls if not is_builtin_function(c))
    text = body_text(body)
    if text is None:
        if body.language in TRUSTED_OPAQUE:
            return (), calls
        return (StatementFacts("call", flags=frozenset({"opaque_code"}), via=f"routine {name}"),), calls
    try:
        facts = policy.facts(text)
    except SqlParseError as err:
        return err, calls
    return as_call(facts.statements, name), calls + facts.routines


def _judge_body(statements, name: str, policy, who: tuple) -> Decision:
    compiled = policy._compiled
    if isinstance(statements, SqlParseError):
        decision = compiled.parse_error(statements)
    elif not statements:
        return _NOTHING
    else:
        decision = compiled.judge(statements, who[0], groups=who[1])
    if decision.action == Action.ALLOW:
        return _NOTHING
    verb = {Action.BLOCK: "blocked", Action.APPROVE: "held for approval"}.get(decision.action, "audited")
    message = f"calls {name}, whose body would be {verb}" + (f": {decision.message}" if decision.message else "")
    return replace(decision, message=message)


def with_routines(decision: Decision, needed: tuple[str, ...], verdict: Decision) -> Decision:
    """The statement's own decision, made stricter by what its routines' bodies do."""
    if verdict.action > decision.action:
        decision = replace(verdict, facts=decision.facts, limits=decision.limits)
    if needed and decision.action != Action.BLOCK:
        decision = replace(decision, routines_needed=needed)
    return decision
