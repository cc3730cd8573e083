"""Catalog lookups: the proxy's own read-only queries, sent in band on the client's connection.

A lookup is a SQL text and what to do with its rows. The relay sends it as a Query after
everything the client sent so far, holds the client's further input until it is answered, and
reads its answer itself: the client never sees it. Lookups run once per session and subject
(the mask rules' table columns at start; a FunctionCall's OID the first time it is called).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from protocols.postgres import DataRow

# The name of a function by OID, schema-qualified, as the policy wants it.
_FUNCTION_NAME_SQL = ("SELECT n.nspname || '.' || p.proname FROM pg_catalog.pg_proc p "
                      "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = {oid}")


@dataclass(slots=True)
class Lookup:
    sql: str
    answered: Callable[[list[tuple] | None], None]   # its rows (values as bytes or None); None:
                                                     # the server answered with an error
    rows: list = field(default_factory=list)
    failed: bool = False                         # the server answered with an error

    def add_row(self, message: bytes) -> None:
        self.rows.append(DataRow(message[5:]).values)


def as_text(rows: list[tuple] | None) -> list[tuple] | None:
    """Rows with their values decoded (the policy reads catalog rows as text)."""
    if rows is None:
        return None
    return [tuple(None if v is None else v.decode("utf-8", "surrogateescape") for v in row) for row in rows]


def function_name_sql(oid: int) -> str:
    return _FUNCTION_NAME_SQL.format(oid=int(oid))


def function_name(rows: list[tuple]) -> str | None:
    """The one name a function-name lookup found; None when the OID names no function."""
    if len(rows) == 1 and len(rows[0]) == 1 and rows[0][0] is not None:
        return rows[0][0].decode("utf-8", "surrogateescape")
    return None

