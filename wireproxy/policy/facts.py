"""SQL facts: what a SQL string would do, statement by statement, as plain data.

`extract(sql, dialect)` turns a SQL string into a `QueryFacts`: one `StatementFacts` per statement
the string holds, followed by one for every statement nested inside it that runs (or is set up
to run) when it does: data-modifying CTEs, `EXPLAIN ANALYZE <stmt>`, `PREPARE name AS <stmt>`,
`COPY (<stmt>) TO`, MERGE actions, CREATE SCHEMA elements, CREATE RULE actions, function and
procedure bodies, DO blocks and the constant strings they EXECUTE. Rules are matched against
every one of them, so `WITH x AS (DELETE FROM t) SELECT 1` is judged as a delete.

PostgreSQL SQL goes through pglast (the C parser's JSON output, never its Python AST: see
pgfacts.py); other dialects through sqlglot (sqlglotfacts.py), mapped onto the same facts.

Names are folded as PostgreSQL folds them: the parser lower-cases unquoted identifiers and
decodes quoted and U&"..." ones, so `USERS`, `"users"` and `U&"\\0075sers"` all give `users`.
A table or function written without a schema is reported without one (`users`,
`pg_read_file`); written with one it is reported as `schema.name` (a database name in front
is dropped). How rule globs match both forms is rules.py's business (see NameGlobs).

The only exception `extract` raises is SqlParseError. A failure inside wireproxy (a bug, a tree
too deep to walk) is a SqlParseError with `internal=True`: the engine blocks those whatever
`on_parse_error` says, so a crash never turns into "allow".
"""

from __future__ import annotations

from wireproxy.policy import pgfacts
from wireproxy.policy.facttypes import (
    FLAGS, KINDS, POSTGRES_DIALECTS, QueryFacts, SqlParseError, StatementFacts, is_postgres)

__all__ = ["FLAGS", "KINDS", "POSTGRES_DIALECTS", "QueryFacts", "SqlParseError", "StatementFacts",
           "extract", "is_postgres"]


def extract(sql: str, dialect: str | None = "postgres", shapes=None) -> QueryFacts:
    """Facts of every statement in `sql`. Raises SqlParseError and nothing else.

    `shapes` (optional, PostgreSQL only): a mapping-like cache with get/put, keyed by the parse
    tree's shape (constants blanked); facts that do not depend on any constant's value are
    shared through it, so texts differing only in constants cost one parse each and no walk."""
    try:
        if dialect is None or dialect in POSTGRES_DIALECTS or dialect.lower() in POSTGRES_DIALECTS:
            pg = pgfacts
            if shapes is None:
                return pg.extract_pg(sql, pg.parse_pg(sql))[0]
            # First PostgreSQL's own normalization (literals replaced by $n, C-level, no tree):
            # a text differing from a known one only in literals costs no parse. Only texts
            # whose facts provably hold for every such variant are stored under it (see
            # pgfacts.normalized_shareable); everything else goes by the parse tree's shape.
            normalized = pg.normalized_key(sql)
            if normalized is not None:
                facts = shapes.get(normalized)
                if facts is not None and not (facts.range_sensitive and pg.special_constants(sql)):
                    return facts
            raw = pg.parse_pg(sql)
            key = pg.shape_key(raw)
            facts = shapes.get(key)
            if facts is None:
                facts, shareable = pg.extract_pg(sql, raw)
                if shareable:
                    shapes.put(key, facts)
            if normalized is not None and pg.normalized_shareable(raw, normalized, facts):
                shapes.put(normalized, facts)
            return facts
        from wireproxy.policy.sqlglotfacts import extract_sqlglot
        return extract_sqlglot(sql, dialect.lower())
    except SqlParseError:
        raise
    except RecursionError:  # a bug, or a tree deeper than we walk: either way, never allow
        raise SqlParseError("statement nested too deeply for wireproxy to judge", internal=True) from None
    except Exception as exc:  # a bug of ours: never let it become an allow
        raise SqlParseError(f"internal error while judging: {exc.__class__.__name__}: {exc}",
                            internal=True) from None
