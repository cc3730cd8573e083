"""Facts for SQL in other dialects (the HTTP/MCP side), through sqlglot, onto facts.py's shapes.

Best effort by nature: sqlglot knows many dialects a little, none as PostgreSQL's own grammar
knows PostgreSQL, and falls back to an opaque `Command` for statements it does not model. Those
are mapped by their leading keywords (GRANT, SET ROLE, CALL, ...). What sqlglot cannot parse at
all is a SqlParseError, which the engine blocks unless the rule file relaxes it. PostgreSQL text
never comes here (pgfacts.py handles it).

Names: unquoted identifiers are lower-cased, quoted ones kept; rules match them
case-insensitively anyway (see rules.NameGlobs).
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from wireproxy.policy.facttypes import QueryFacts, SqlParseError, StatementFacts
from wireproxy.policy.truth import CONST, FALSE, ROW, TRUE, every_row, of_value, t_and, t_is, t_not, t_or


_COMMAND_KINDS = {
    "GRANT": "grant", "REVOKE": "revoke", "CALL": "call", "EXEC": "call", "EXECUTE": "execute",
    "DO": "do", "PREPARE": "prepare", "SET": "set", "RESET": "set", "BEGIN": "transaction",
    "START": "transaction", "COMMIT": "transaction", "ROLLBACK": "transaction",
    "SAVEPOINT": "transaction", "RELEASE": "transaction", "END": "transaction",
    "EXPLAIN": "explain", "ALTER": "alter", "CREATE": "create", "DROP": "drop",
    "TRUNCATE": "truncate", "INSERT": "insert", "UPDATE": "update", "DELETE": "delete",
    "MERGE": "merge", "SELECT": "select", "WITH": "select", "VALUES": "select",
}


def dialect_names() -> frozenset[str]:
    return frozenset(d.value for d in sqlglot.dialects.Dialects if d.value)


def extract_sqlglot(sql: str, dialect: str) -> QueryFacts:
    if dialect not in dialect_names():
        raise SqlParseError(f"unknown SQL dialect {dialect!r}")
    try:
        trees = sqlglot.parse(sql, read=dialect)
    except SqlglotError as exc:
        raise SqlParseError(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__) from None
    out: list[StatementFacts] = []
    for tree in trees:
        if tree is not None:
            _statement(tree, "", out)
    stateful = any(s.kind in ("prepare", "execute") for s in out)
    return QueryFacts(tuple(out), stateful, dialect)


def _ident(node) -> str:
    if node is None:
        return ""
    if isinstance(node, exp.Identifier):
        return node.this if node.quoted else node.this.lower()
    if isinstance(node, exp.Expression):
        return node.name if node.name else node.sql()
    return str(node).lower()


def _table_name(t: exp.Table) -> str:
    name = _ident(t.args.get("this"))
    db = _ident(t.args.get("db"))
    return f"{db}.{name}" if db and name else name or db


def _kind(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Select) and tree.args.get("into"):
        return "create"
    if isinstance(tree, exp.Query):
        return "select"
    for cls, kind in ((exp.Insert, "insert"), (exp.Update, "update"), (exp.Delete, "delete"),
                      (exp.Merge, "merge"), (exp.Drop, "drop"), (exp.TruncateTable, "truncate"),
                      (exp.Alter, "alter"), (exp.Create, "create"), (exp.Grant, "grant"),
                      (exp.Revoke, "revoke"), (exp.Set, "set"), (exp.Transaction, "transaction"),
                      (exp.Commit, "transaction"), (exp.Rollback, "transaction"),
                      (exp.Describe, "explain"), (exp.Execute, "call")):
        if isinstance(tree, cls):
            return kind
    if isinstance(tree, exp.Copy):
        return "copy_from" if tree.args.get("kind") else "copy_to"
    if isinstance(tree, exp.Command):
        return _COMMAND_KINDS.get(str(tree.this).upper(), "other")
    return "other"


def _statement(tree: exp.Expression, via: str, out: list[StatementFacts]) -> None:
    kind = _kind(tree)
    index = len(out)
    out.append(StatementFacts(kind))  # placeholder keeps nested statements after their parent
    tables: set[str] = set()
    targets: set[str] = set()
    functions: set[str] = set()
    roles: set[str] = set()
    flags: set[str] = set()
    nested = [n for n in tree.walk() if n is not tree and isinstance(n, _DML) and _owner(n, tree) is tree]
    _names(tree, nested, tables, functions)
    this = tree.args.get("this")
    _targets(tree, kind, this, tables, targets, functions, roles)
    tables |= targets
    _flags(tree, flags)
    _command_flags(tree, roles, flags)
    has_limit = kind == "select" and _limited(tree)
    has_where, taut = _where(tree, this)
    out[index] = StatementFacts(
        kind=kind, tables=frozenset(tables), targets=frozenset(targets),
        functions=frozenset(functions), roles=frozenset(roles), flags=frozenset(flags),
        has_where=has_where, tautological_where=taut, has_limit=has_limit, via=via)
    if isinstance(tree, exp.Merge):
        _merge_actions(tree, out)
    for n in nested:
        _statement(n, f"inside {kind}", out)


def _names(tree: exp.Expression, nested: list, tables: set[str], functions: set[str]) -> None:
    """Tables and functions the statement itself uses (not those of nested DML)."""
    cte_names = {_ident(n.args["alias"].args.get("this")) for n in tree.find_all(exp.CTE)
                 if n.args.get("alias") is not None}
    inside_nested = {id(sub) for n in nested for sub in n.walk()}
    for node in tree.walk():
        if id(node) in inside_nested:
            continue
        if isinstance(node, exp.Table):
            name = _table_name(node)
            if name and not (name in cte_names and not node.args.get("db")):
                tables.add(name)
        elif isinstance(node, exp.Func) and not isinstance(node, _NOT_FUNCTIONS):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            name = str(name).lower()
            parent = node.parent
            if isinstance(parent, exp.Dot) and parent.expression is node:
                name = f"{_ident(parent.this)}.{name}"
            if name:
                functions.add(name)



def _targets(tree: exp.Expression, kind: str, this, tables: set[str], targets: set[str],
             functions: set[str], roles: set[str]) -> None:
    if isinstance(tree, exp.Use):
        tables.clear()
    if isinstance(tree, exp.Execute) and isinstance(this, exp.Table):
        tables.clear()
        functions.add(_table_name(this))
    if kind in ("insert", "update", "delete", "merge", "alter", "create", "copy_from"):
        t = this.find(exp.Table) if isinstance(this, exp.Expression) else None
        if isinstance(this, exp.Table):
            t = this
        if t is not None:
            targets.add(_table_name(t))
    elif kind in ("drop", "truncate"):
        for t in tree.args.get("tables") or tree.args.get("expressions") or []:
            if isinstance(t, exp.Table) and _table_name(t):
                targets.add(_table_name(t))
    elif kind in ("grant", "revoke") and isinstance(tree, (exp.Grant, exp.Revoke)):
        securable = tree.args.get("securable")
        if isinstance(securable, exp.Table):
            targets.add(_table_name(securable))
        for p in tree.args.get("principals") or []:
            roles.add(_ident(p.args.get("this")) if isinstance(p, exp.Expression) else str(p).lower())


def _flags(tree: exp.Expression, flags: set[str]) -> None:
    if isinstance(tree, exp.Drop) and str(tree.args.get("kind", "")).upper() == "COLUMN":
        flags.add("drop_column")
    if isinstance(tree, exp.Alter):
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.Drop) and str(action.args.get("kind", "")).upper() == "COLUMN":
                flags.add("drop_column")
    if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() in ("FUNCTION", "PROCEDURE"):
        if re.search(r"\bSECURITY\s+DEFINER\b", tree.sql(), re.I):
            flags.add("security_definer")
    if isinstance(tree, exp.Copy):
        files = tree.args.get("files") or []
        if any(isinstance(f, exp.Literal) for f in files):
            flags.add("copy_file")
    if isinstance(tree, exp.Use) and str(tree.args.get("kind", "")).upper() == "ROLE":
        flags.add("set_role")
    if isinstance(tree, exp.Set):
        text = tree.sql().upper()
        if re.search(r"\bSET\s+(LOCAL\s+|SESSION\s+)?(ROLE\b|SESSION\s+AUTHORIZATION\b)", text):
            flags.add("set_role")


def _command_flags(tree: exp.Expression, roles: set[str], flags: set[str]) -> None:
    """Statements sqlglot keeps as an unparsed Command: read by keyword."""
    if isinstance(tree, exp.Command):
        rest = str(tree.args.get("expression") or "")
        word = str(tree.this).upper()
        if word == "SET" and re.match(r"\s*(LOCAL\s+|SESSION\s+)?(ROLE\b|SESSION\s+AUTHORIZATION\b)", rest, re.I):
            flags.add("set_role")
        if word in ("GRANT", "REVOKE"):
            if re.search(r"\b(TO|FROM)\s+PUBLIC\b", rest, re.I) or re.search(r",\s*PUBLIC\b", rest, re.I):
                roles.add("public")
            if re.search(r"\bSUPERUSER\b", rest, re.I):
                flags.add("superuser_role")
        if word == "ALTER" and re.match(r"\s*SYSTEM\b", rest, re.I):
            flags.add("alter_system")
        if word in ("CREATE", "ALTER") and re.match(r"\s*(ROLE|USER|GROUP)\b", rest, re.I):
            for attribute, flag in (("SUPERUSER", "superuser_role"), ("BYPASSRLS", "bypassrls_role"),
                                    ("REPLICATION", "replication_role")):
                if re.search(rf"(?<!NO){attribute}\b", rest, re.I):
                    flags.add(flag)
        if word == "COPY" and re.search(r"\bPROGRAM\b", rest, re.I):
            flags.add("copy_program")


def _where(tree: exp.Expression, this) -> tuple[bool, bool]:
    """(has a WHERE, the WHERE reaches every row) for UPDATE and DELETE."""
    if isinstance(tree, (exp.Update, exp.Delete)):
        where = tree.args.get("where")
        if isinstance(where, exp.Where):
            target = this if isinstance(this, exp.Table) else (this.find(exp.Table) if isinstance(this, exp.Expression) else None)
            quals = set()
            if target is not None:
                quals = {_ident(target.args.get("this")), _table_name(target)}
                alias = target.args.get("alias")
                if alias is not None:
                    quals.add(_ident(alias.args.get("this")))
            return True, every_row(_truth(where.this, quals))

    return False, False


_DML = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
_NOT_FUNCTIONS = (exp.Column, exp.Binary, exp.Connector, exp.Not, exp.Paren, exp.Neg)


def _owner(node: exp.Expression, root: exp.Expression) -> exp.Expression | None:
    """The nearest enclosing data-modifying statement (None inside a MERGE's WHEN clause)."""
    p = node.parent
    while p is not None and p is not root:
        if isinstance(p, exp.When):
            return None
        if isinstance(p, _DML):
            return p
        p = p.parent
    return root


def _limited(tree: exp.Expression) -> bool:
    limit = tree.args.get("limit")
    if isinstance(limit, (exp.Limit, exp.Fetch)):
        return True
    return False


def _merge_actions(tree: exp.Merge, out: list[StatementFacts]) -> None:
    target = tree.args.get("this")
    name = _table_name(target) if isinstance(target, exp.Table) else ""
    quals = {name}
    if isinstance(target, exp.Table) and target.args.get("alias") is not None:
        quals.add(_ident(target.args["alias"].args.get("this")))
    on = tree.args.get("on")
    join = _truth(on, quals) if isinstance(on, exp.Expression) else TRUE
    whens = tree.args.get("whens")
    for when in (whens.expressions if isinstance(whens, exp.Whens) else []):
        then = when.args.get("then")
        text = then.sql().upper() if isinstance(then, exp.Expression) else ""
        kind = ("delete" if text.startswith("DELETE") else "update" if isinstance(then, exp.Update) or text.startswith("UPDATE")
                else "insert" if isinstance(then, exp.Insert) or text.startswith("INSERT") else None)
        if kind is None:
            continue
        cond = when.args.get("condition")
        cond_truth = _truth(cond, quals) if isinstance(cond, exp.Expression) else None
        if kind == "insert":
            has_where, taut = False, False
        elif when.args.get("matched"):
            has_where = True
            taut = every_row(join if cond_truth is None else t_and(join, cond_truth))
        else:
            has_where = cond is not None
            taut = cond_truth is not None and every_row(cond_truth)
        out.append(StatementFacts(kind=kind, tables=frozenset({name}), targets=frozenset({name}),
                                  has_where=has_where, tautological_where=taut, via="MERGE action"))


def _row_dependent(node: exp.Expression, quals: set[str]) -> bool:
    for n in node.walk():
        if isinstance(n, exp.Column):
            table = n.args.get("table")
            if table is None or _ident(table) in quals:
                return True
    return False


def _const(node: exp.Expression):
    if isinstance(node, exp.Paren):
        return _const(node.this)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Null):
        return None   # NULL cast to any type is NULL
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = str(node.this)
        return float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(node, exp.Neg):
        v = _const(node.this)
        return -v
    if isinstance(node, exp.Not):
        v = _truthy(_const(node.this))
        return None if v is None else not v
    if isinstance(node, (exp.And, exp.Or)):
        a, b = _truthy(_const(node.this)), _truthy(_const(node.expression))
        if isinstance(node, exp.And):
            return False if False in (a, b) else None if None in (a, b) else True
        return True if True in (a, b) else None if None in (a, b) else False
    if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        a, b = _const(node.this), _const(node.expression)
        if a is None or b is None:
            return None
        if type(a) is not type(b):
            a, b = str(a), str(b)
        return {exp.EQ: a == b, exp.NEQ: a != b, exp.GT: a > b, exp.GTE: a >= b,
                exp.LT: a < b, exp.LTE: a <= b}[type(node)]
    if isinstance(node, exp.Is):
        return _const(node.this) is None if isinstance(node.expression, exp.Null) else None
    raise ValueError("not constant")


def _truthy(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        t = v.strip().lower()
        if t in ("t", "true", "y", "yes", "on", "1"):
            return True
        if t in ("f", "false", "n", "no", "off", "0"):
            return False
    if isinstance(v, (int, float)):
        return v != 0  # MySQL and SQLite treat numbers as booleans
    raise ValueError("not a boolean")


def _truth(node: exp.Expression, quals: set[str]) -> int:
    if not _row_dependent(node, quals):
        try:
            return of_value(_truthy(_const(node)))
        except (ValueError, TypeError, ArithmeticError, KeyError):
            return CONST
    if isinstance(node, exp.Paren):
        return _truth(node.this, quals)
    if isinstance(node, exp.Not):
        return t_not(_truth(node.this, quals))
    if isinstance(node, exp.And):
        return t_and(_truth(node.this, quals), _truth(node.expression, quals))
    if isinstance(node, exp.Or):
        inner = node.expression.this if isinstance(node.expression, exp.Not) else None
        if inner is not None and inner == node.this:
            return TRUE
        return t_or(_truth(node.this, quals), _truth(node.expression, quals))
    if isinstance(node, exp.Is) and isinstance(node.expression, (exp.Boolean, exp.Null)):
        test = "is_unknown" if isinstance(node.expression, exp.Null) else \
            "is_true" if node.expression.this else "is_false"
        return t_is(_truth(node.this, quals), test)
    if isinstance(node, exp.Not) and isinstance(node.this, exp.Is) \
            and isinstance(node.this.expression, (exp.Boolean, exp.Null)):
        return t_not(_truth(node.this, quals))
    if isinstance(node, (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)) and _same(node.this, node.expression, quals):
        return TRUE
    if isinstance(node, (exp.NEQ, exp.GT, exp.LT)) and _same(node.this, node.expression, quals):
        return FALSE
    if isinstance(node, (exp.Like, exp.ILike)):
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string and pattern.this and set(pattern.this) == {"%"}:
            return TRUE
    if isinstance(node, exp.In):
        if any(_same(node.this, e, quals) for e in node.expressions):
            return TRUE
    return ROW


def _same(a: exp.Expression, b: exp.Expression, quals: set[str]) -> bool:
    def norm(e: exp.Expression) -> str:
        e = e.copy()
        for col in e.find_all(exp.Column):
            table = col.args.get("table")
            if table is not None and _ident(table) in quals:
                col.set("table", None)
        return e.sql()
    return norm(a) == norm(b)
