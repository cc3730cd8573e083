"""PL/pgSQL (DO blocks, function bodies): each embedded statement and expression is judged."""

from __future__ import annotations

import json

from pglast.parser import ParseError, parse_plpgsql_json

from wireproxy.policy.facttypes import SqlParseError
from wireproxy.policy.pgfacts.acc import _Acc
from wireproxy.policy.pgfacts.consteval import _const_string
from wireproxy.policy.pgfacts.nodes import _parse_json


class PlpgsqlWalk:
    """The PL/pgSQL part of the walker (mixed into _Extractor)."""

    def statement_text(self, loc: int | None, length: int | None) -> str:
        if self._bytes is None:
            self._bytes = self.text.encode("utf-8")
        start = loc or 0
        end = start + length if length else len(self._bytes)
        return self._bytes[start:end].decode("utf-8", errors="replace")

    def plpgsql(self, text: str, acc: _Acc, via: str) -> None:
        try:
            raw = parse_plpgsql_json(text)
        except ParseError as exc:
            raise SqlParseError(f"PL/pgSQL: {exc.args[0] if exc.args else exc}") from None
        except (ValueError, UnicodeError) as exc:
            raise SqlParseError(f"invalid PL/pgSQL text: {exc}") from None
        for function in json.loads(raw) or ():
            fn = function.get("PLpgSQL_function") or {}
            variables = set()
            for datum in fn.get("datums") or ():
                for d in datum.values():
                    if type(d) is dict and d.get("refname"):
                        variables.add(d["refname"])
            self._plpgsql_walk(fn.get("action"), acc, via, frozenset(variables))

    _DYNAMIC = {"PLpgSQL_stmt_dynexecute": "query", "PLpgSQL_stmt_dynfors": "query",
                "PLpgSQL_stmt_open": "dynquery", "PLpgSQL_stmt_return_query": "dynquery"}

    # Statements whose query's rows go somewhere (returned, looped over, handed out as a
    # cursor); any other query's rows are discarded (PERFORM, EXECUTE) or one lands in INTO.
    _ROW_SOURCES = frozenset({"PLpgSQL_stmt_return_query", "PLpgSQL_stmt_fors", "PLpgSQL_stmt_dynfors",
                              "PLpgSQL_stmt_open", "PLpgSQL_stmt_forc"})

    def _plpgsql_walk(self, root, acc: _Acc, via: str, variables: frozenset[str]) -> None:
        stack: list = [(root, False)]
        while stack:
            value, rows = stack.pop()
            if type(value) is list:
                stack.extend((v, rows) for v in reversed(value))
                continue
            if type(value) is not dict:
                continue
            for key, body in value.items():
                if key == "PLpgSQL_expr" and type(body) is dict:
                    self._pl_expr(body, acc, via, variables, dynamic=False, rows=rows)
                    continue
                inner_rows = rows or key in self._ROW_SOURCES
                field = self._DYNAMIC.get(key)
                if field is not None and type(body) is dict:
                    dyn = body.get(field)
                    if type(dyn) is dict and "PLpgSQL_expr" in dyn:
                        self._pl_expr(dyn["PLpgSQL_expr"], acc, via, variables, dynamic=True, rows=inner_rows)
                    stack.extend((v, inner_rows) for k, v in body.items() if k != field and type(v) in (dict, list))
                    continue
                if type(body) in (dict, list):
                    stack.append((body, inner_rows))

    def _pl_expr(self, expr: dict, acc: _Acc, via: str, variables: frozenset[str], *, dynamic: bool,
                 rows: bool = False) -> None:
        """One embedded query or expression; `rows`: its rows leave the block (RETURN QUERY, a
        loop, a cursor), so what it reads in full counts as read."""
        query = expr.get("query") or ""
        mode = expr.get("parseMode", 0)
        if dynamic:
            probe = type(self)("SELECT " + query, self.out, self.depth + 1, variables)
            stmts = _parse_json(probe.text).get("stmts") or []
            text = None
            if len(stmts) == 1:
                target = (stmts[0]["stmt"].get("SelectStmt") or {}).get("targetList") or []
                if len(target) == 1:
                    text = _const_string(target[0].get("ResTarget", {}).get("val"))
            if text is not None:
                self.nested_text(text, acc, f"{via} EXECUTE", frozenset(), expose=rows)
            else:
                acc.flags.add("dynamic_sql")
                for item in stmts:
                    probe.walk(item["stmt"], acc, frozenset())
            return
        if mode == 0:   # a statement: its rows go nowhere unless `rows` (PERFORM, INTO one row)
            self.nested_text(query, acc, via, variables, expose=rows)
        elif mode == 2:
            self.nested_text("SELECT " + query, acc, via, variables)
        else:  # assignment: "target := expr" or "target = expr"
            self.nested_text("SELECT " + query.replace(":=", "=", 1), acc, via, variables)

