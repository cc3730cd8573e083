"""SQL facts, rule matching and decisions: pure code the proxies call (no trio, no I/O).

See engine.py for the API, facttypes.py and facts.py for what is known about a statement,
rules.py for the rule types (wireproxy/config/rulefile.py loads them from files), truth.py for
the three-valued logic of WHERE analysis. Nothing here imports config/, masking/ or the proxies.
"""

from wireproxy.policy.decision import (
    INTERNAL_ERROR, PARSE_ERROR, UNKNOWN_FUNCTION, UNKNOWN_PREPARED, Action, Decision, Limits)
from wireproxy.policy.engine import Policy, SessionJudge
from wireproxy.policy.facts import FLAGS, KINDS, QueryFacts, SqlParseError, StatementFacts, extract
from wireproxy.policy.fingerprint import fingerprint
from wireproxy.policy.columnbook import column_lookup_sql
from wireproxy.policy.routines import ROUTINE_LOOKUP_SQL, routine_lookup_sql
from wireproxy.policy.rules import Rule, RuleSet

__all__ = [
    "Action", "Decision", "Limits", "Policy", "SessionJudge", "QueryFacts", "StatementFacts",
    "SqlParseError", "extract", "KINDS", "FLAGS", "PARSE_ERROR", "INTERNAL_ERROR",
    "UNKNOWN_PREPARED", "UNKNOWN_FUNCTION", "Rule", "RuleSet", "fingerprint", "ROUTINE_LOOKUP_SQL",
    "routine_lookup_sql", "column_lookup_sql",
]
