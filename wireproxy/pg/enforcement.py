"""Enforcement: judge each statement, stop the blocked ones, and say why.

A blocked Query or Parse never reaches the server: it is replaced by a statement the server cannot
parse (a Bind of a re-judged statement by one naming a statement that cannot exist, a
FunctionCall by OID 0), and the server's error for that substitute is swapped for ours
(42501 `blocked by wireproxy rule <id>: ...`). The server thus stays the one authority on
session state: a failed transaction, 25P02 afterwards, a pipeline rolled back to its Sync.

The relay calls this object with what it read and forwards what it returns. It remembers the
session's prepared statements and portals (what they run and how they were judged), and judges
a statement prepared under older rules again at its next Bind.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from protocols.postgres import Bind, ErrorResponse, FunctionCall, Parse, Query

from ..policy import Action, Decision
from ..policy.decision import ALLOW
from .protocol import Decided, Pending, Portal, Statement

SESSION_LOG_RULE = "session-log"


class Judge(Protocol):
    """The per-session face of the policy engine (wireproxy.policy.SessionJudge)."""
    version: int                                  # changes when the rules are reloaded
    standard_conforming_strings: bool             # the server's setting: how '\\' lexes
    def query(self, sql: str) -> Decision: ...
    def parse(self, sql: str, name: str = "") -> Decision: ...
    def close(self, name: str) -> None: ...
    def function(self, name: str | None) -> Decision: ...


class StrictCheck(Protocol):
    def violation(self, sql: str) -> tuple[str, str] | None: ...


def unparseable(rule_id: str) -> str:
    """SQL the server rejects at parse time, naming the rule in the server's own log."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in rule_id or "")[:60]
    return f"wireproxy blocked this statement by rule {safe}"


class Enforcer:
    def __init__(self, judge: Judge | None, *, emit: Callable[[Any], None],
                 gate: Callable[[], str | None] | None = None, strict: StrictCheck | None = None,
                 tally=None):
        self.judge = judge
        self.tally = tally              # counters by Action (anything with inc()), or None
        self.emit = emit
        self.gate = gate                # the session log's failure, if any: refuse (fail closed)
        self.strict = strict
        self.statements: dict[str, Statement] = {}
        self.portals: dict[str, Portal] = {}
        self.function_names: dict[int, str | None] = {}
        # A held statement's verdict, applied when it comes round again (approved or denied):
        # (sql, decision, (sqlstate, client text) or None); and the one being applied.
        self.override: tuple[str, Decision, tuple[str, str] | None] | None = None
        self._override_error: tuple[str, str] | None = None

    @property
    def active(self) -> bool:
        return self.judge is not None or self.gate is not None or self.strict is not None

    @property
    def rules_version(self) -> int:
        return self.judge.version if self.judge is not None else 0

    # ---------------------------------------------------------------------- deciding --

    def decide(self, judging: Callable[[], Decision], sql: str) -> Decision:
        decision = self._decide(judging, sql)
        if self.tally is not None and not (decision.routines_needed or decision.columns_needed):
            self.tally[decision.action].inc()     # (those are judged again, counted then)
        return decision

    def _decide(self, judging: Callable[[], Decision], sql: str) -> Decision:
        """The session log's state first (fail closed), then the rules (none: allow), then
        strict masks."""
        override = self.override
        if override is not None and override[0] == sql:
            self.override = None
            self._override_error = override[2]
            return override[1]
        if self.gate is not None:
            failure = self.gate()
            if failure:
                return Decision(Action.BLOCK, SESSION_LOG_RULE,
                                f"the session log cannot be written ({failure})", (SESSION_LOG_RULE,))
        decision = ALLOW if self.judge is None else judging()
        if self.strict is not None and decision.allowed:
            found = self.strict.violation(sql)
            if found is not None:
                mask_id, column = found
                return Decision(Action.BLOCK, mask_id, f"{column} is masked (strict): it may only "
                                "be selected as it is, not used in an expression", (mask_id,))
        return decision

    def query(self, sql: str) -> Decision:
        return self.decide(lambda: self.judge.query(sql), sql)

    def parse(self, name: str, sql: str, param_types: bytes) -> Decision:
        decision = self.decide(lambda: self.judge.parse(sql, name), sql)
        self.statements[name] = Statement(sql, self.rules_version, decision, param_types)
        return decision

    def bind(self, portal: str, name: str, message: bytes) -> Decision | None:
        """Remember what a portal runs. A statement parsed under older rules is judged again:
        its new decision is returned (None: nothing to enforce here)."""
        statement = self.statements.get(name)
        if statement is None:
            self.portals.pop(portal, None)
            return None
        current = self.judge is None or statement.rules_version == self.judge.version
        if current and (self.override is None or self.override[0] != statement.sql):
            self.portals[portal] = Portal(statement, message)
            return None
        decision = self.decide(lambda: self.judge.parse(statement.sql, name), statement.sql)
        # A decision still waiting for catalog facts is not final: judged again at the replay.
        version = statement.rules_version if (decision.routines_needed or decision.columns_needed) \
            else self.rules_version
        statement = self.statements[name] = Statement(statement.sql, version, decision, statement.param_types)
        self.portals[portal] = Portal(statement, message)
        return decision

    def close_statement(self, name: str) -> None:
        self.statements.pop(name, None)
        if self.judge is not None:
            self.judge.close(name)

    def forget_all(self) -> None:
        """DISCARD ALL or DEALLOCATE ALL went through: the server has forgotten every prepared
        statement (and DISCARD ALL every portal)."""
        self.statements.clear()
        self.portals.clear()

    def function(self, oid: int) -> Decision:
        decision = self.judge.function(self.function_names.get(oid))
        if self.tally is not None:
            self.tally[decision.action].inc()
        return decision

    def server_setting(self, name: str, value: str) -> None:
        """With standard_conforming_strings off, a backslash in '...' escapes on the server: the
        judge must read strings the way the server will."""
        if name == "standard_conforming_strings" and self.judge is not None:
            self.judge.standard_conforming_strings = value == "on"

    # ---------------------------------------------------------------------- stopping --

    def enforce(self, decision: Decision, entry: Pending | None, sql: str, path: str,
                original: bytes, substitute: Callable[[], bytes]) -> bytes:
        """What goes to the server for a judged message: itself, or its substitute."""
        action = decision.action
        if action == 0:                                # allow: the hot path
            return original
        self.emit(Decided(action.name.lower(), decision.rule_id, list(decision.matched), sql, path))
        if action == Action.AUDIT:
            return original
        error, self._override_error = self._override_error, None
        if entry is not None:
            entry.blocked = error or ("42501", decision.client_message())
        return substitute()

    def block_with(self, sql: str, decision: Decision, client_text: str, sqlstate: str = "42501") -> None:
        """Next time `sql` comes round (replayed from a hold), stop it and tell the client
        `client_text` (a denied or timed-out approval, a cancel while waiting)."""
        self.override = (sql, Decision(Action.BLOCK, decision.rule_id, client_text, decision.matched),
                         (sqlstate, client_text))

    def allow_once(self, sql: str, decision: Decision) -> None:
        """Next time `sql` comes round, let it through: a human approved it."""
        self.override = (sql, Decision(Action.ALLOW, decision.rule_id, decision.message, decision.matched,
                                       decision.facts, limits=decision.limits), None)

    def swap_error(self, entry: Pending, message: bytes) -> bytes:
        """The server's error for a substitute becomes ours; only the first error answers it."""
        (sqlstate, text), entry.blocked = entry.blocked, None
        return ErrorResponse.make(sqlstate, text).encode()


def substitute_query(rule_id: str) -> bytes:
    return Query(unparseable(rule_id)).encode()


def substitute_parse(name: str, rule_id: str) -> bytes:
    return Parse(name, unparseable(rule_id)).encode()


def substitute_bind(message: bytes, name: str) -> bytes:
    """A Bind naming a statement that cannot exist: the server fails it (26000), we say why."""
    bind = Bind.decode(message[5:])
    return Bind(bind.portal, "wireproxy blocked " + name, bind.param_formats, bind.params,
                bind.result_formats).encode()


def substitute_function_call() -> bytes:
    return FunctionCall(0).encode()                 # OID 0 never exists
