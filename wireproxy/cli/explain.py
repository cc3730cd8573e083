"""`wireproxy check --explain`: the facts behind a decision, statement by statement.

What each statement reads, writes, reads in full, copies, grants and calls, what its WHERE
does, which flags it raised (with what they mean) and which rules matched it: so an operator
sees why, not only what. Routines that are not built-ins are listed as such: the proxy looks
their bodies up in band and judges those too (`check` has no database, so it cannot).
"""

from __future__ import annotations

from wireproxy.policy.facttypes import FLAGS, WHERE_CHECKS
from wireproxy.policy.pgcatalog import is_builtin_function

_ATOMS = {"not_null": "is NOT NULL", "boolean": "is a NOT NULL boolean", "above": "is an integer",
          "below": "is an integer"}
_WRITES = frozenset({"insert", "update", "delete", "merge", "copy_from", "drop", "truncate",
                     "alter", "create", "grant", "revoke"})


def explain(decision, ruleset) -> list[dict]:
    """One dict per statement: the facts in words, and the ids of the rules that matched it."""
    rules = [r for r in ruleset.sql_rules if not r.is_limit]
    out = []
    for st in decision.facts or ():
        writes = sorted(st.targets) if st.kind in _WRITES else []
        entry: dict = {"statement": st.kind + (f" [{st.via}]" if st.via else "")}
        entry["reads"] = sorted(st.tables - set(writes))
        entry["writes"] = writes
        entry["reads_in_full"] = sorted(st.reads_all)
        entry["copies"] = sorted(st.copies)
        entry["grants"] = sorted(st.granted) if st.granted else (sorted(st.roles) if st.kind == "grant" else [])
        entry["calls"] = [f if is_builtin_function(f) else f"{f} (routine: body judged in band)"
                          for f in sorted(st.functions)]
        if st.kind in ("update", "delete"):
            if not st.has_where:
                entry["where"] = "none: every row"
            elif st.tautological_where:
                why = ", ".join(WHERE_CHECKS[c].split(":")[0] for c in sorted(st.where_checks)) or "literal"
                entry["where"] = f"holds for every row ({why})"
            elif st.where_catalog:
                atoms = ", ".join(f"{a[1]} {_ATOMS[a[0]]}" for a in st.where_catalog)
                entry["where"] = f"selects rows, unless the catalog says {atoms} (the proxy asks, in band)"
            else:
                entry["where"] = "selects rows"
        entry["flags"] = {f: FLAGS.get(f, "") for f in sorted(st.flags)}
        entry["matched"] = [r.id for r in rules if r.matches_statement(st)]
        out.append({k: v for k, v in entry.items() if v or k == "statement"})
    return out


def explain_text(entries: list[dict]) -> list[str]:
    lines = ["explain:"]
    for i, entry in enumerate(entries, 1):
        lines.append(f"  {i}. {entry['statement']}")
        for key in ("reads", "writes", "reads_in_full", "copies", "grants", "calls"):
            if entry.get(key):
                lines.append(f"       {key.replace('_', ' ')}: {', '.join(entry[key])}")
        if entry.get("where"):
            lines.append(f"       where: {entry['where']}")
        for flag, meaning in entry.get("flags", {}).items():
            lines.append(f"       flag {flag}: {meaning}")
        lines.append(f"       rules matched: {', '.join(entry.get('matched', [])) or '(none)'}")
    return lines
