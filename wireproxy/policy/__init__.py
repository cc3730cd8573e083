"""SQL facts, rule matching and decisions: pure code the proxies call (no trio, no I/O).

See engine.py for the API, facts.py for what is known about a statement, and
wireproxy/rulefile.py for the rule-file format. (Policy and SessionJudge are loaded on first
use: wireproxy.rulefile imports this package's facts and decisions, and the engine imports
wireproxy.rulefile.)
"""

from wireproxy.policy.decision import (
    INTERNAL_ERROR, PARSE_ERROR, UNKNOWN_FUNCTION, UNKNOWN_PREPARED, Action, Decision, Limits)
from wireproxy.policy.facts import FLAGS, KINDS, QueryFacts, SqlParseError, StatementFacts, extract

__all__ = [
    "Action", "Decision", "Limits", "Policy", "SessionJudge", "QueryFacts", "StatementFacts",
    "SqlParseError", "extract", "KINDS", "FLAGS", "PARSE_ERROR", "INTERNAL_ERROR",
    "UNKNOWN_PREPARED", "UNKNOWN_FUNCTION",
]


def __getattr__(name: str):
    if name in ("Policy", "SessionJudge"):
        from wireproxy.policy import engine
        return getattr(engine, name)
    raise AttributeError(f"module 'wireproxy.policy' has no attribute {name!r}")
