"""Writes hidden behind a name: judging a called routine by its body, looked up in band.

The relay contract (the relay does the I/O, this module none):

    d = judge.query(sql)
    if d.routines_needed:                       # functions/procedures this session has not seen
        rows = <run routine_lookup_sql(d.routines_needed) in band, read-only>
        judge.learn_routines(d.routines_needed, rows)
        d = judge.query(sql)                    # now judged with their bodies; repeat while
                                                # routines_needed is not empty (bounded depth)

`routine_lookup_sql(names)` returns one SELECT whose rows have the columns of ROUTINE_COLUMNS:
the name as asked, schema, name, kind (f, p, a, w), language, source (prosrc), definition
(pg_get_functiondef: the whole CREATE text; NULL for aggregates), arguments, security_definer,
calls (an aggregate's support functions). A name written without a schema resolves as
PostgreSQL resolves it: the first schema of current_schemas(true) holding a routine of that
name; every overload there is returned (and judged: the call is as bad as its worst one). A
name with no row does not exist (the call will fail): it is remembered, never asked again.

A body in SQL or PL/pgSQL is judged with the same engine as any statement: what it would do
(its statements, their flags, what they read in full) is judged as if the caller had sent it,
so a routine whose body deletes every row makes `SELECT cleanup()` blocked with the body's
rule id and a message naming the routine. Bodies calling other routines are followed to
MAX_ROUTINE_DEPTH. C and internal functions (only superusers create them, extensions ship them)
count as built-ins; any other language (plpython, plperl, ...) cannot be read: `opaque_code`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from wireproxy.policy.facttypes import StatementFacts

MAX_ROUTINE_DEPTH = 4
READABLE_LANGUAGES = frozenset({"sql", "plpgsql"})
TRUSTED_OPAQUE = frozenset({"c", "internal"})
ROUTINE_COLUMNS = ("asked", "schema", "name", "kind", "language", "source", "definition",
                   "arguments", "security_definer", "calls")


@dataclass(frozen=True, slots=True)
class RoutineBody:
    """One routine (one overload) as the catalog describes it."""

    schema: str
    name: str
    kind: str                 # f function, p procedure, a aggregate, w window
    language: str
    source: str               # prosrc
    definition: str | None    # pg_get_functiondef(oid), NULL for aggregates
    arguments: str = ""
    security_definer: bool = False
    calls: tuple[str, ...] = ()   # an aggregate's support functions

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def text_expression(text: str) -> str:
    """A text as an injection-proof SQL expression: hex digits only, so no quote, backslash or
    standard_conforming_strings setting can change what it means."""
    return f"pg_catalog.convert_from(pg_catalog.decode('{text.encode('utf-8').hex()}', 'hex'), 'UTF8')"


def split_name(name: str) -> tuple[str | None, str]:
    schema, dot, base = name.rpartition(".")
    return (schema if dot else None), base


def routine_lookup_sql(names: Sequence[str]) -> str:
    """One read-only SELECT describing every routine named (see the module doc)."""
    if not names:
        raise ValueError("routine_lookup_sql needs at least one name")
    values = ", ".join(
        f"({text_expression(n)}, {text_expression(s) if s is not None else 'NULL::text'}, {text_expression(b)})"
        for n, (s, b) in ((n, split_name(n)) for n in names))
    return (
        "SELECT a.asked, n.nspname AS schema, p.proname AS name, p.prokind::text AS kind, "
        "l.lanname AS language, p.prosrc AS source, "
        "CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_catalog.pg_get_functiondef(p.oid) END AS definition, "
        "pg_catalog.pg_get_function_arguments(p.oid) AS arguments, p.prosecdef AS security_definer, "
        "CASE WHEN p.prokind = 'a' THEN pg_catalog.array_remove(ARRAY[g.aggtransfn::text, "
        "g.aggfinalfn::text, g.aggcombinefn::text, g.aggserialfn::text, g.aggdeserialfn::text, "
        "g.aggmtransfn::text, g.aggminvtransfn::text, g.aggmfinalfn::text], '-') END AS calls "
        f"FROM (VALUES {values}) AS a(asked, schema, name) "
        "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = CASE WHEN a.schema IS NOT NULL THEN "
        "(SELECT x.oid FROM pg_catalog.pg_namespace x WHERE x.nspname = a.schema) ELSE "
        "(SELECT x.oid FROM pg_catalog.unnest(pg_catalog.current_schemas(true)) WITH ORDINALITY AS s(nsp, pos) "
        "JOIN pg_catalog.pg_namespace x ON x.nspname = s.nsp WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_proc q "
        "WHERE q.pronamespace = x.oid AND q.proname = a.name) ORDER BY s.pos LIMIT 1) END "
        "LEFT JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid AND p.proname = a.name "
        "LEFT JOIN pg_catalog.pg_language l ON l.oid = p.prolang "
        "LEFT JOIN pg_catalog.pg_aggregate g ON g.aggfnoid = p.oid "
        "ORDER BY a.asked, p.oid")


ROUTINE_LOOKUP_SQL = routine_lookup_sql   # the name the relay contract uses


def _row_value(row, index: int, key: str):
    if isinstance(row, dict):
        return row.get(key)
    return row[index] if index < len(row) else None


def parse_rows(names: Iterable[str], rows: Iterable) -> dict[str, tuple[RoutineBody, ...]]:
    """Rows of routine_lookup_sql (tuples in ROUTINE_COLUMNS order, or dicts by column name;
    values as text or Python values) -> bodies by the name asked. Names with no row: ()."""
    found: dict[str, list[RoutineBody]] = {n: [] for n in names}
    for row in rows:
        values = {key: _row_value(row, i, key) for i, key in enumerate(ROUTINE_COLUMNS)}
        asked = values["asked"]
        if asked is None:
            continue
        bucket = found.setdefault(str(asked), [])
        if values["name"] is None:      # the LEFT JOIN found nothing: no such routine
            continue
        calls = values["calls"]
        if isinstance(calls, str):      # a text[] read as text: {a,b}
            calls = [c for c in calls.strip("{}").split(",") if c]
        secdef = values["security_definer"]
        bucket.append(RoutineBody(
            schema=str(values["schema"]), name=str(values["name"]), kind=str(values["kind"] or "f"),
            language=str(values["language"] or "").lower(), source=str(values["source"] or ""),
            definition=values["definition"] if values["definition"] else None,
            arguments=str(values["arguments"] or ""),
            security_definer=secdef in (True, "t", "true", "on", "1"),
            calls=tuple(str(c).strip('"') for c in calls or () if c and c != "-")))   # "-": no function
    return {name: tuple(bodies) for name, bodies in found.items()}


def body_text(body: RoutineBody) -> str | None:
    """The CREATE text whose facts describe what calling the routine does, or None when its
    language cannot be read."""
    if body.language not in READABLE_LANGUAGES:
        return None
    if body.definition:
        return body.definition
    tag = "wp"
    while f"${tag}$" in body.source:
        tag += "x"
    what = "PROCEDURE" if body.kind == "p" else "FUNCTION"
    returns = "" if body.kind == "p" else " RETURNS void"
    return f"CREATE {what} wireproxy_body(){returns} LANGUAGE {body.language} AS ${tag}${body.source}${tag}$"


def as_call(statements: Sequence[StatementFacts], name: str) -> tuple[StatementFacts, ...]:
    """The facts of a body's CREATE text turned into what calling it does: the CREATE itself
    becomes a call (it read, flagged and folded what the body does), minus what only creating
    it means (SECURITY DEFINER: calling such a routine is no escalation of its own)."""
    out = []
    for i, st in enumerate(statements):
        if i == 0 and st.kind == "create":
            st = StatementFacts(kind="call", tables=st.tables, functions=st.functions, roles=st.roles,
                                flags=st.flags - {"security_definer"}, reads_all=st.reads_all,
                                copies=st.copies, via=f"routine {name}")
        out.append(st)
    return tuple(out)
