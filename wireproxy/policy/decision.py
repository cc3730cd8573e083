"""Decisions: what the policy says about one query, as plain data.

The proxies turn a Decision into wire behaviour (ErrorResponse 42501, HTTP 403, an approval
request, a log record); `wireproxy check` prints it. Nothing here knows about sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from wireproxy.policy.facttypes import StatementFacts


class Action(IntEnum):
    """Ordered by restrictiveness: when several rules match, the largest wins."""

    ALLOW = 0
    AUDIT = 1
    APPROVE = 2
    BLOCK = 3

    @classmethod
    def parse(cls, text: str) -> "Action":
        return cls[text.upper()]

    def __str__(self) -> str:
        return self.name.lower()


# Rule ids wireproxy itself uses (not from a rule file).
PARSE_ERROR = "parse-error"                   # SQL the parser rejects (on_parse_error decides)
INTERNAL_ERROR = "internal-error"             # wireproxy failed to judge: always blocked
UNKNOWN_PREPARED = "unknown-prepared-statement"  # EXECUTE of a name this session never prepared
UNKNOWN_FUNCTION = "unknown-function"         # FunctionCall whose function name is not known


@dataclass(frozen=True, slots=True)
class Limits:
    """Volume limits that apply to a query's results (from rules with max_* keys): the relay
    enforces them while rows flow; `rule_id`/`action` say what to do when one is exceeded."""

    max_rows: int | None = None
    max_bytes: int | None = None
    max_session_bytes: int | None = None
    rule_ids: tuple[str, ...] = ()
    action: Action = Action.BLOCK
    message: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    rule_id: str | None = None          # the rule that decided (None: nothing matched)
    message: str = ""
    matched: tuple[str, ...] = ()       # every rule that matched, in rule-file order
    facts: tuple[StatementFacts, ...] | None = None
    would: Action | None = None         # before an audit-mode file downgraded it (dry run)
    limits: Limits | None = None
    approvers: tuple[str, ...] = ()     # approve: who may approve (the rule's `approvers`)
    approval_timeout: float = 300.0     # approve: seconds to wait (the rule's `timeout`)
    # Routines the statement calls whose bodies this session has not looked up yet: the relay
    # holds the statement, runs routine_lookup_sql(routines_needed) in band, hands the rows to
    # SessionJudge.learn_routines and judges again. Empty in the common case.
    routines_needed: tuple[str, ...] = ()
    # Tables whose column types and NOT NULL constraints would decide a WHERE (columnbook.py):
    # looked up the same way, with column_lookup_sql and SessionJudge.learn_columns.
    columns_needed: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """The statement may go on to the server now (allow or audit)."""
        return self.action <= Action.AUDIT

    @property
    def blocked(self) -> bool:
        return self.action == Action.BLOCK

    def client_message(self) -> str:
        """What the client is told: `blocked by wireproxy rule <id>: <message>`."""
        text = f"blocked by wireproxy rule {self.rule_id}"
        return f"{text}: {self.message}" if self.message else text

    def to_dict(self) -> dict:
        out: dict = {"action": str(self.action), "rule": self.rule_id, "message": self.message,
                     "matched": list(self.matched)}
        if self.would is not None and self.would != self.action:
            out["would"] = str(self.would)
        if self.limits is not None:
            out["limits"] = {k: getattr(self.limits, k) for k in ("max_rows", "max_bytes", "max_session_bytes")
                             if getattr(self.limits, k) is not None}
            out["limits"]["rules"] = list(self.limits.rule_ids)
        if self.action == Action.APPROVE:
            out["approvers"] = list(self.approvers)
            out["approval_timeout"] = self.approval_timeout
        if self.routines_needed:
            out["routines_needed"] = list(self.routines_needed)
        if self.columns_needed:
            out["columns_needed"] = list(self.columns_needed)
        if self.facts is not None:
            out["statements"] = [s.to_dict() for s in self.facts]
        return out


ALLOW = Decision(Action.ALLOW, facts=())
