"""The walk over a parse tree: every statement, nested ones included, gets its facts."""

from __future__ import annotations

import json

from wireproxy.policy.facttypes import QueryFacts, SqlParseError
from wireproxy.policy.pgfacts import ddl, dml
from wireproxy.policy.pgfacts.acc import (
    _LEAVES, _NOT_NESTED, _ROLESPEC, _TABLE_XML, _TARGET_FIELDS, _WRITE_KINDS, MAX_NESTING, _Acc, _kind_of)
from wireproxy.policy.pgfacts.consteval import _const_string, _is_bool_const
from wireproxy.policy.pgfacts.nodes import (
    _kind_reads, _parse_qualified, _plain, _range_skips, _reads, _rv_name, _strings, _unwrap, parse_pg)
from wireproxy.policy.pgfacts.bounds import full_reads, record_reads
from wireproxy.policy.pgfacts.keys import special_constants
from wireproxy.policy.pgfacts.plpgsql import PlpgsqlWalk
from wireproxy.policy.pgcatalog import is_builtin_function, is_catalog_relation
from wireproxy.policy.facttypes import catalog_tables_of

_HANDLERS = {**dml.HANDLERS, **ddl.HANDLERS}
_OWN_OUTPUT = frozenset({"DoStmt", "CreateFunctionStmt"})
_DML_WRITES = frozenset({"insert", "update", "delete", "merge", "copy_from", "truncate"})
_BULK_EXPORT = frozenset({"database_to_xml", "database_to_xml_and_xmlschema", "schema_to_xml",
                          "schema_to_xml_and_xmlschema", "cursor_to_xml"})
_PRELOAD = frozenset({"session_preload_libraries", "local_preload_libraries", "shared_preload_libraries"})


def extract_pg(sql: str, raw: str | None = None) -> tuple[QueryFacts, bool]:
    """Facts of `sql` (its JSON tree `raw` when already parsed), and whether they hold for
    every text of the same shape (no constant's value was looked at). `facts.kind_free` says
    whether they ignored even the kinds of constants (number, string, NULL...), which a
    normalized text does not keep (see normalized_shareable)."""
    if raw is None:
        raw = parse_pg(sql)
    out: list[_Acc] = []
    _plain[0] = not special_constants(sql)
    before, kinds_before, skips_before = _reads[0], _kind_reads[0], _range_skips[0]
    _Extractor(sql, out, 0, frozenset()).run(None, "", fold_select=False, raw=raw)
    shareable = _reads[0] == before
    kind_free = shareable and _kind_reads[0] == kinds_before
    for acc in out:
        if acc.kind in _DML_WRITES and any(is_catalog_relation(t) for t in acc.targets):
            acc.flags.add("catalog_write")
    statements = tuple(a.freeze() for a in out)
    routines = tuple(sorted({f for s in statements for f in s.functions if not is_builtin_function(f)}))
    loud = {f for a in out for f in a.functions - a.quiet_calls}
    quiet = tuple(sorted({f for a in out for f in a.quiet_calls if f not in loud and f in routines}))
    stateful = any(s.kind in ("prepare", "execute") or "deallocate" in s.flags for s in statements)
    catalog = catalog_tables_of(statements)
    sensitive = _range_skips[0] != skips_before
    return QueryFacts(statements, stateful, "postgres", kind_free, routines, catalog, quiet, sensitive), shareable



def _sql_argument(name: str, args: list) -> int | None:
    """Index of the argument holding SQL text, for functions that run SQL given as a string."""
    n = len(args)
    if name in ("query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "ts_stat"):
        return 0
    if name == "ts_rewrite":
        return 1 if n == 2 else None
    if name in ("dblink", "dblink_exec"):
        # (sql), (sql, fail_on_error), (connection, sql), (connection, sql, fail_on_error)
        if n == 1 or (n == 2 and _is_bool_const(args[1])):
            return 0
        return 1
    if name == "dblink_send_query":
        return 1
    if name == "dblink_open":
        # (cursor, sql), (cursor, sql, fail), (connection, cursor, sql), (connection, cursor, sql, fail)
        if n == 2 or (n == 3 and _is_bool_const(args[2])):
            return 1
        return 2
    return None



class _Extractor(PlpgsqlWalk):
    def __init__(self, text: str, out: list[_Acc], depth: int, variables: frozenset[str]):
        if depth > MAX_NESTING:
            raise SqlParseError("statements nested too deeply for wireproxy to judge")
        self.text = text
        self.out = out
        self.depth = depth
        self.vars = variables
        self._bytes: bytes | None = None
        self.quiet = False   # rows read here go nowhere (EXPLAIN ANALYZE, PERFORM, EXECUTE)

    # -- entry points ---------------------------------------------------------------------------

    def run(self, parent: _Acc | None, via: str, *, fold_select: bool, raw: str | None = None,
            expose: bool = True) -> None:
        """Judge every statement of self.text; with fold_select, plain SELECTs belong to
        `parent` (an expression or query inside PL/pgSQL), other statements nest under it."""
        tree = json.loads(raw if raw is not None else parse_pg(self.text))
        for item in tree.get("stmts") or ():
            node = item.get("stmt")
            if not node:
                continue
            key, body = _unwrap(node)
            if fold_select and parent is not None and key == "SelectStmt" and "intoClause" not in body:
                if expose:   # its rows reach the client (a RAISE argument, a function's result)
                    record_reads(parent, full_reads(body, frozenset(), self.vars), "reads_all")
                self.walk(body, parent, frozenset())
            else:
                self.statement(key, body, via, frozenset(),
                               loc=item.get("stmt_location", 0), length=item.get("stmt_len", 0))

    def nested_text(self, text: str, parent: _Acc, via: str, variables: frozenset[str], *,
                    expose: bool = True) -> None:
        inner = _Extractor(text, self.out, self.depth + 1, variables)
        inner.quiet = self.quiet or not expose
        inner.run(parent, via, fold_select=True, expose=not inner.quiet)

    def statement(self, key: str, body: dict, via: str, scope: frozenset[str], *,
                  loc: int | None = None, length: int | None = None) -> _Acc:
        if self.depth > MAX_NESTING:
            raise SqlParseError("statements nested too deeply for wireproxy to judge")
        acc = _Acc(_kind_of(key, body), via)
        self.out.append(acc)
        self.depth += 1
        quiet = self.quiet
        if key in _OWN_OUTPUT:   # a DO block's RAISE reaches the client however the block was run
            self.quiet = False
        try:
            handler = _HANDLERS.get(key)
            if acc.kind in _WRITE_KINDS:
                for field in _TARGET_FIELDS:
                    rv = body.get(field)
                    if type(rv) is dict and "relname" in rv:
                        self.target(rv, acc)
            if handler is not None:
                handler(self, body, acc, scope, loc, length)
            else:
                self.walk(body, acc, scope)
            if quiet and acc.kind == "select":   # e.g. EXPLAIN ANALYZE: no one sees the rows
                acc.reads_all.clear()
                acc.catalog_reads = [r for r in acc.catalog_reads if r[0] != "reads_all"]
        finally:
            self.depth -= 1
            self.quiet = quiet
        return acc

    # -- facts ----------------------------------------------------------------------------------

    def target(self, rv: dict, acc: _Acc) -> None:
        name = _rv_name(rv)
        acc.targets.add(name)
        acc.tables.add(name)

    def funccall(self, b: dict, acc: _Acc) -> None:
        names = _strings(b.get("funcname"))
        if not names:
            return
        name = ".".join(names[-2:])
        acc.functions.add(name)
        if self.quiet:
            acc.quiet_calls.add(name)
        base = names[-1]
        args = b.get("args") or []
        index = _sql_argument(base, args)
        if index is not None:
            if index < len(args):
                text = _const_string(args[index])
                if text is None:
                    acc.flags.add("dynamic_sql")
                else:
                    self.nested_text(text, acc, f"{base}() query", frozenset())
        elif base == "set_config":
            name = _const_string(args[0]) if args else None
            name = name.strip().lower() if name is not None else None
            if name is None or name in ("role", "session_authorization"):
                acc.flags.add("set_role")
            if name is None or name == "search_path":
                acc.flags.add("search_path")
        elif base in _BULK_EXPORT:
            acc.flags.add("bulk_export")
        elif base in _TABLE_XML and args:
            text = _const_string(args[0])
            if text is not None:
                table = _parse_qualified(text)
                if table:
                    acc.tables.add(table)

    def varset(self, v: dict, acc: _Acc) -> None:
        if v.get("kind") != "VAR_SET_VALUE":
            return  # RESET, SET ... TO DEFAULT, SET ... FROM CURRENT put nothing new in place
        name = (v.get("name") or "").lower()
        if name in ("role", "session_authorization"):
            args = v.get("args") or []
            value = _const_string(args[0]) if args else None
            if not (name == "role" and value is not None and value.lower() == "none"):
                acc.flags.add("set_role")
        elif name == "search_path":
            acc.flags.add("search_path")
        elif name in _PRELOAD:
            acc.flags.add("load_library")   # loaded into every later session of the role

    # -- the generic walk -----------------------------------------------------------------------

    def walk(self, root, acc: _Acc, scope: frozenset[str], *, nest: bool = True,
             via: str | None = None, skip: tuple[str, ...] = ()) -> None:
        """Collect facts from a subtree into `acc`. With nest, statement nodes met on the way
        become statements of their own (via `via`); without, they are folded into `acc` (the
        query of a plain EXPLAIN, which is planned but never run)."""
        if via is None:
            via = f"inside {acc.kind}"
        stack: list[tuple[object, frozenset[str]]] = []
        push = stack.append
        pop = stack.pop
        if skip and type(root) is dict:
            for k, v in root.items():
                if k not in skip and (type(v) is dict or type(v) is list):
                    push((v, scope))
        else:
            push((root, scope))
        while stack:
            value, scope = pop()
            if type(value) is list:
                for v in reversed(value):
                    if type(v) is dict or type(v) is list:
                        push((v, scope))
                continue
            if type(value) is not dict:
                continue
            if len(value) == 1:
                for key in value:
                    break
                if key[:1].isupper():
                    if key in _LEAVES:
                        continue
                    body = value[key]
                    if type(body) is not dict:
                        continue
                    if key == "FuncCall":
                        self.funccall(body, acc)
                    elif key == "VariableSetStmt":
                        self.varset(body, acc)
                    elif nest and key.endswith("Stmt") and key not in _NOT_NESTED:
                        self.statement(key, body, via, scope)
                        continue
                    push((body, scope))
                    continue
            if "relname" in value:
                name = _rv_name(value)
                if value.get("schemaname") or name not in scope:
                    acc.tables.add(name)
            elif "roletype" in value:
                t = value.get("roletype")
                acc.roles.add(value.get("rolename", "") if t == "ROLESPEC_CSTRING"
                              else _ROLESPEC.get(t, str(t).lower()))
            elif "kind" in value:
                kind = value["kind"]
                if type(kind) is str and kind.startswith("VAR_"):
                    self.varset(value, acc)
            if "withClause" in value and type(value["withClause"]) is dict:
                scope = self._with(value["withClause"], acc, scope, stack, nest)
                for k, v in value.items():
                    if k != "withClause" and (type(v) is dict or type(v) is list):
                        push((v, scope))
                continue
            for v in value.values():
                if type(v) is dict or type(v) is list:
                    push((v, scope))

    def _with(self, wc: dict, acc: _Acc, scope: frozenset[str], stack: list, nest: bool) -> frozenset[str]:
        """Scopes CTE names as PostgreSQL does (a non-recursive CTE sees only the ones before
        it; the main query sees all), so `WITH users AS (SELECT * FROM users)` still reads the
        real table. Data-modifying CTEs become statements of their own."""
        ctes = []
        for item in wc.get("ctes") or ():
            if type(item) is dict and "CommonTableExpr" in item:
                ctes.append(item["CommonTableExpr"])
        names = [c.get("ctename", "") for c in ctes]
        recursive = bool(wc.get("recursive"))
        full = scope | frozenset(names)
        for i, cte in enumerate(ctes):
            cte_scope = full if recursive else scope | frozenset(names[:i])
            query = cte.get("ctequery")
            if type(query) is not dict or len(query) != 1:
                continue
            key, body = _unwrap(query)
            if nest and key.endswith("Stmt") and key not in _NOT_NESTED:
                self.statement(key, body, f"WITH {cte.get('ctename', '')}", cte_scope)
            else:
                stack.append((query, cte_scope))
        return full

    # -- PL/pgSQL -------------------------------------------------------------------------------
