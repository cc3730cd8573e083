"""Statements that depend on the session: PREPARE / EXECUTE / DEALLOCATE resolved against the
session's prepared names (EXECUTE p is judged as what p was prepared as), and what such
expanded statements need from the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wireproxy.policy.decision import UNKNOWN_PREPARED, Decision
from wireproxy.policy.facttypes import QueryFacts, StatementFacts
from wireproxy.policy.pgcatalog import is_builtin_function

if TYPE_CHECKING:
    from wireproxy.policy.engine import _Compiled


def routines_of(statements) -> tuple[str, ...]:
    return tuple(sorted({f for s in statements for f in s.functions if not is_builtin_function(f)}))



def resolve_prepared(compiled: _Compiled, facts: QueryFacts, who: tuple, tool, model,
                      prepared: dict) -> tuple[Decision, dict]:
    """Judge statements that use prepared-statement names: EXECUTE p is judged as p's
    statement, for `who` = (user, groups). Returns the decision and the prepared-name table as
    it would be afterwards."""
    prepared = dict(prepared)
    expanded: list[StatementFacts] = []
    unknown: str | None = None
    for st in facts.statements:
        expanded.append(st)
        if st.kind == "prepare" and st.name is not None:
            prepared[st.name] = st.inner
        elif st.kind == "execute":
            inner = prepared.get(st.name)
            if inner is None:
                unknown = st.name if unknown is None else unknown
            else:
                if st.via == "CREATE TABLE AS":   # CREATE TABLE x AS EXECUTE p: p's reads are copied
                    copied = frozenset(t for s in inner for t in s.reads_all)
                    if copied:
                        expanded.append(StatementFacts("create", tables=copied, copies=copied,
                                                       via="CREATE TABLE AS EXECUTE"))
                expanded.extend(inner)
        elif "deallocate" in st.flags:
            if st.name is None:
                prepared.clear()
            else:
                prepared.pop(st.name, None)
    statements = tuple(expanded)
    decision = compiled.judge(statements, who[0], tool, model, who[1])
    if unknown is not None:
        missing = compiled.unjudgeable(
            UNKNOWN_PREPARED, f"EXECUTE of prepared statement {unknown!r}, which this session never prepared",
            statements)
        if missing.action > decision.action:
            decision = missing
    return decision, prepared
