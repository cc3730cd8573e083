"""Column types and NOT NULL constraints from the catalog, for WHERE checks only it can decide.

`DELETE FROM t WHERE id IS NOT NULL` reaches every row when id is NOT NULL (a primary key);
`flag IN (true, false)` when flag is a NOT NULL boolean; `n > -2147483649` when n is a smallint
or integer. The facts name such comparisons (StatementFacts.where_catalog, QueryFacts.
catalog_tables); the relay contract is the routines' one (routines.py), side by side:

    d = judge.query(sql)
    if d.columns_needed:
        rows = <run column_lookup_sql(d.columns_needed) in band, read-only>
        judge.learn_columns(d.columns_needed, rows)
        d = judge.query(sql)

Rows: (asked, schema, table, column, type, not_null). A table with no rows does not exist.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Sequence

from wireproxy.policy.facttypes import StatementFacts
from wireproxy.policy.routines import text_expression

COLUMN_COLUMNS = ("asked", "schema", "table", "column", "type", "not_null")
_SMALL_INTEGERS = frozenset({"smallint", "integer"})


def _regclass(name: str) -> str:
    schema, dot, table = name.rpartition(".")
    text = f"pg_catalog.quote_ident({text_expression(table)})"
    if dot:
        text = f"pg_catalog.quote_ident({text_expression(schema)}) || '.' || {text}"
    return f"pg_catalog.to_regclass({text})"


def column_lookup_sql(tables: Sequence[str]) -> str:
    """One read-only SELECT: every live column of every table named (resolved as PostgreSQL
    resolves the name on the session's search_path)."""
    if not tables:
        raise ValueError("column_lookup_sql needs at least one table")
    values = ", ".join(f"({text_expression(t)}, {_regclass(t)})" for t in tables)
    return ("SELECT a.asked, n.nspname AS schema, c.relname AS table, att.attname AS column, "
            "pg_catalog.format_type(att.atttypid, NULL) AS type, att.attnotnull AS not_null "
            f"FROM (VALUES {values}) AS a(asked, rel) "
            "LEFT JOIN pg_catalog.pg_class c ON c.oid = a.rel "
            "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0 "
            "AND NOT att.attisdropped ORDER BY a.asked, att.attnum")


class ColumnBook:
    """One session's column knowledge: table as written -> {column: (type, not_null)}."""

    __slots__ = ("tables",)

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, tuple[str, bool]]] = {}

    def learn(self, tables: Iterable[str], rows: Iterable) -> None:
        for name in tables:
            self.tables.setdefault(name, {})
        for row in rows:
            values = dict(zip(COLUMN_COLUMNS, row)) if not isinstance(row, dict) else row
            if values.get("asked") is None or values.get("column") is None:
                continue
            not_null = values.get("not_null") in (True, "t", "true", "on", "1")
            self.tables.setdefault(str(values["asked"]), {})[str(values["column"])] = (str(values["type"]), not_null)

    def needed(self, tables: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t for t in tables if t not in self.tables)

    def confirms(self, atoms: tuple, tables) -> bool:
        """Do the column facts of `tables` confirm every atom?"""
        columns: dict = {}
        for table in tables:
            columns.update(self.tables.get(table) or {})
        for atom in atoms:
            kind, column = atom[0], atom[1]
            info = columns.get(column)
            if info is None:
                return False
            type_name, not_null = info
            if kind in ("not_null", "null") and not not_null:
                return False
            if kind == "boolean" and not (not_null and type_name == "boolean"):
                return False
            if kind in ("above", "below") and type_name not in _SMALL_INTEGERS:
                return False
        return True

    def apply(self, statements: tuple[StatementFacts, ...]) -> tuple[StatementFacts, ...] | None:
        """The statements with every catalog-confirmed WHERE marked as reaching every row, or
        None when the catalog confirms none."""
        changed = False
        out = []
        for st in statements:
            if st.where_catalog and not st.tautological_where and self.confirms(st.where_catalog, st.targets):
                st = replace(st, tautological_where=True, where_checks=st.where_checks | {"catalog"})
                changed = True
            whole = {(field, table) for field, table, atoms in st.catalog_reads if self.confirms(atoms, (table,))}
            if whole:
                st = replace(st, reads_all=st.reads_all | {t for f, t in whole if f == "reads_all"},
                             copies=st.copies | {t for f, t in whole if f == "copies"})
                changed = True
            out.append(st)
        return tuple(out) if changed else None
