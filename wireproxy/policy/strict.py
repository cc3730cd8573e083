"""Strict masks: a masked column may be read as it is, never computed with.

A `[[mask]]` with `strict = true` masks its columns in results, and more: a statement that uses
one of them anywhere but as a plain entry of a SELECT list (`lower(email)`, `email || ''`,
`WHERE email LIKE 'a%'`, `ORDER BY email`, `row_to_json(u)`, a whole-row `u` or `u.*` inside an
expression) is refused, because such a value reaches the client under another name, or leaks
through filtering and ordering, where column-based masking cannot see it.

Columns are matched by name (the last part of a glob: `users.email` -> `email`), whatever table
they come from: without the catalog the table of a column reference is not known, and refusing
one query too many is the safe side. A whole-row reference (`u`, `u.*` naming a FROM item) in an
expression counts as a use of every column.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import OrderedDict

from pglast.parser import ParseError, parse_sql_json


class StrictColumns:
    """The strict column globs of one user's masks; `violation(sql)` is cached by text."""

    def __init__(self, strict: list[tuple[str, str]], cache_size: int = 4096):
        self.rules = [(mask_id, re.compile(fnmatch.translate(glob.rsplit(".", 1)[-1].lower())).match)
                      for mask_id, glob in strict]
        self._cache: OrderedDict[str, tuple[str, str] | None] = OrderedDict()
        self._cache_size = cache_size

    def __bool__(self) -> bool:
        return bool(self.rules)

    def violation(self, sql: str) -> tuple[str, str] | None:
        """(mask id, what was used) when `sql` uses a strict column inside an expression. SQL
        that does not parse is left to the policy (which blocks it unless told otherwise)."""
        if sql in self._cache:
            self._cache.move_to_end(sql)
            return self._cache[sql]
        try:
            tree = json.loads(parse_sql_json(sql))
        except (ParseError, ValueError):
            found = None
        else:
            found = self._find(tree)
        self._cache[sql] = found
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found

    def _find(self, tree) -> tuple[str, str] | None:
        row_names = set()
        _collect_from_names(tree, row_names)
        for raw in tree.get("stmts", ()):
            stmt = raw.get("stmt", {})
            select = stmt.get("SelectStmt")
            # Only a plain SELECT hands its columns to the client as they are: INSERT ... SELECT,
            # SELECT INTO, CREATE TABLE AS, COPY (...) store or ship them past the masks.
            plain = select is not None and not select.get("intoClause")
            for column in _used_in_expressions(stmt, row_names, select_plain=plain):
                for mask_id, match in self.rules:
                    if column is None or match(column):
                        return mask_id, column or "a whole row"
        return None


def _collect_from_names(node, names: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "RangeVar" and isinstance(value, dict):
                names.add(value.get("relname", "").lower())
                alias = value.get("alias")
                if alias:
                    names.add(alias.get("aliasname", "").lower())
            elif key in ("RangeSubselect", "RangeFunction") and isinstance(value, dict) and value.get("alias"):
                names.add(value["alias"].get("aliasname", "").lower())
            _collect_from_names(value, names)
    elif isinstance(node, list):
        for item in node:
            _collect_from_names(item, names)


def _used_in_expressions(node, row_names: set[str], plain: bool = False, select_plain: bool = True):
    """Column names (None for a whole row) referenced anywhere but as a plain SELECT-list entry.

    `select_plain`: whether a SELECT found here passes its plain columns on as they are (the
    statement itself, a FROM subquery) or inside a value (a scalar subquery, a set operation's
    branch, a CTE, whose output columns lose their origin)."""
    if isinstance(node, list):
        for item in node:
            yield from _used_in_expressions(item, row_names, select_plain=select_plain)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "ColumnRef":
            fields = value.get("fields", [])
            names = [f["String"]["sval"].lower() for f in fields if "String" in f]
            star = any("A_Star" in f for f in fields)
            whole_row = (star and not plain) or (len(fields) == 1 and names and names[0] in row_names)
            if whole_row:
                yield None
            elif not plain and names and not star:
                yield names[-1]
        elif key == "SelectStmt":
            yield from _select(value, row_names, select_plain)
        elif key in ("SubLink", "withClause", "CommonTableExpr"):
            yield from _used_in_expressions(value, row_names, select_plain=False)
        elif key == "RangeSubselect":
            yield from _used_in_expressions(value, row_names, select_plain=True)
        else:
            yield from _used_in_expressions(value, row_names, select_plain=select_plain)


def _select(body: dict, row_names: set[str], select_plain: bool):
    set_operation = body.get("op", "SETOP_NONE") != "SETOP_NONE"
    for target in body.get("targetList") or ():
        val = target.get("ResTarget", {}).get("val")
        is_plain = select_plain and isinstance(val, dict) and "ColumnRef" in val
        yield from _used_in_expressions(val, row_names, plain=is_plain, select_plain=False)
    for key, value in body.items():
        if key == "targetList":
            continue
        if key in ("larg", "rarg") and isinstance(value, dict):
            yield from _select(value, row_names, select_plain and not set_operation)
        else:
            yield from _used_in_expressions(value, row_names, select_plain=key == "fromClause")
