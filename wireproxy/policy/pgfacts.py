"""PostgreSQL facts from pglast's C parser output (JSON), never from its Python AST.

`pglast.parser.parse_sql_json` runs libpg_query (PostgreSQL's own grammar) and hands back the
raw parse tree as JSON, 10-17x cheaper than building pglast's Python objects. We walk that tree
with an explicit stack (no recursion on expression depth) and collect what rules look at.

Shape of the JSON: a node behind a `Node *` field is wrapped, `{"DeleteStmt": {...}}`; a field
with a concrete C type (`DeleteStmt.relation` is a `RangeVar *`) is bare, `{"relname": ...}`.
Both are recognised. Identifiers arrive already folded by the grammar (unquoted lower-cased,
quoted and U&"" decoded), string constants already decoded (E'', $$, U&'').

Nested statements get their own facts (see facts.py): a statement node met inside another one
(a CTE, a COPY query, a rule action, a schema element...) is judged on its own; a SELECT inside
another statement belongs to that statement. PL/pgSQL (DO blocks and function bodies) goes
through `parse_plpgsql_json`; each embedded SQL statement and expression is parsed in turn.

WHERE analysis (UPDATE, DELETE, MERGE actions) sorts a condition into four outcomes: true for
every row (`id = id`, `x OR true`, `NOT (id <> id)`), false for every row, row-independent but
unknown (`$1`, `random() < 2`, `now() > '2000-01-01'`, `(SELECT true)`, a plpgsql variable, a
column of another table in USING/FROM), or row-dependent. The first and the third make the
WHERE "tautological": such a statement reaches every row or none, which is what an unbounded
UPDATE/DELETE rule is about. Inside subqueries an unqualified column is taken to be the row's
(we cannot know the other table's columns without the catalog), so `WHERE EXISTS (SELECT 1
FROM u WHERE x = 1)` counts as row-dependent: a documented limit, not a guess.
"""

from __future__ import annotations

import json
import re

from pglast.parser import ParseError, normalize, parse_plpgsql_json, parse_sql_json

from wireproxy.policy.facts import QueryFacts, SqlParseError, StatementFacts

MAX_NESTING = 32  # statements inside statements (CTE in DO in EXECUTE string in ...)

_KIND = {
    "SelectStmt": "select", "InsertStmt": "insert", "UpdateStmt": "update",
    "DeleteStmt": "delete", "MergeStmt": "merge", "TruncateStmt": "truncate", "DoStmt": "do",
    "CallStmt": "call", "VariableSetStmt": "set", "TransactionStmt": "transaction",
    "ExplainStmt": "explain", "PrepareStmt": "prepare", "ExecuteStmt": "execute",
    "DefineStmt": "create", "ViewStmt": "create", "IndexStmt": "create", "RuleStmt": "create",
    "CompositeTypeStmt": "create", "ImportForeignSchemaStmt": "create",
    "RenameStmt": "alter", "ReassignOwnedStmt": "alter", "DropOwnedStmt": "drop",
}
_WRITE_KINDS = frozenset({"insert", "update", "delete", "merge", "copy_from", "drop", "truncate",
                          "alter", "create", "grant", "revoke"})
_TARGET_FIELDS = ("relation", "view", "sequence", "table")
_TABLE_OBJECTS = frozenset({"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_INDEX",
                            "OBJECT_SEQUENCE", "OBJECT_FOREIGN_TABLE"})
_ROLE_FLAGS = {"superuser": "superuser_role", "bypassrls": "bypassrls_role",
               "isreplication": "replication_role", "replication": "replication_role",
               "createrole": "createrole_role", "createdb": "createdb_role"}
_ROLESPEC = {"ROLESPEC_PUBLIC": "public", "ROLESPEC_CURRENT_USER": "current_user",
             "ROLESPEC_SESSION_USER": "session_user", "ROLESPEC_CURRENT_ROLE": "current_role"}
_FDW_EXTENSIONS = frozenset({"dblink", "postgres_fdw", "file_fdw"})
_FUNC_DEFELEMS = frozenset({"function", "procedure", "sfunc", "finalfunc", "combinefunc",
                            "serialfunc", "deserialfunc", "msfunc", "minvfunc", "mfinalfunc",
                            "restrict", "join", "subtype_diff", "canonical"})
_NOT_NESTED = frozenset({"SelectStmt", "ReturnStmt", "VariableSetStmt", "PLAssignStmt"})
# Nodes with nothing a rule looks at below them: the walk does not descend.
_LEAVES = frozenset({"String", "A_Const", "Integer", "Float", "Boolean", "BitString", "ParamRef",
                     "A_Star", "ColumnRef", "TypeName", "SQLValueFunction", "SetToDefault"})
_TABLE_XML = frozenset({"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema"})


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


def _is_bool_const(node) -> bool:
    try:
        return isinstance(_const(node), bool)
    except _NotConst:
        return False


class _Acc:
    """Facts of one statement while they are being collected."""

    __slots__ = ("kind", "via", "tables", "targets", "functions", "roles", "flags",
                 "has_where", "taut", "has_limit", "name", "inner", "_frozen")

    def __init__(self, kind: str, via: str):
        self.kind = kind
        self.via = via
        self.tables: set[str] = set()
        self.targets: set[str] = set()
        self.functions: set[str] = set()
        self.roles: set[str] = set()
        self.flags: set[str] = set()
        self.has_where = False
        self.taut = False
        self.has_limit = False
        self.name: str | None = None
        self.inner: list[_Acc] = []
        self._frozen: StatementFacts | None = None

    def freeze(self) -> StatementFacts:
        if self._frozen is None:
            self._frozen = StatementFacts(
                kind=self.kind, tables=frozenset(self.tables), targets=frozenset(self.targets),
                functions=frozenset(self.functions), roles=frozenset(self.roles),
                flags=frozenset(self.flags), has_where=self.has_where,
                tautological_where=self.taut, has_limit=self.has_limit, via=self.via,
                name=self.name, inner=tuple(a.freeze() for a in self.inner))
        return self._frozen


def parse_pg(sql: str) -> str:
    """pglast's JSON parse tree of `sql`; SqlParseError when PostgreSQL's grammar rejects it."""
    try:
        return parse_sql_json(sql)
    except ParseError as exc:
        raise SqlParseError(str(exc.args[0]) if exc.args else str(exc)) from None
    except (ValueError, UnicodeError) as exc:
        raise SqlParseError(f"invalid SQL text: {exc}") from None


_LOCATIONS = re.compile(r'location":-?\d+')   # location, stmt_location, arg_location
_LENGTHS = re.compile(r'(?:stmt_len|rexpr_list_start|rexpr_list_end)":-?\d+')
_CONSTANTS = tuple(
    (marker, re.compile(pattern), '{"A_Const":"%s"}' % kind)
    for marker, pattern, kind in (
        ('{"A_Const":{"ival"', r'\{"A_Const":\{"ival":\{[^{}]*\}(?:,"location":)?\}\}', "ival"),
        ('{"A_Const":{"sval"', r'\{"A_Const":\{"sval":\{[^{}]*\}(?:,"location":)?\}\}', "sval"),
        ('{"A_Const":{"fval"', r'\{"A_Const":\{"fval":\{[^{}]*\}(?:,"location":)?\}\}', "fval"),
        ('{"A_Const":{"bsval"', r'\{"A_Const":\{"bsval":\{[^{}]*\}(?:,"location":)?\}\}', "bsval"),
        ('{"A_Const":{"boolval"', r'\{"A_Const":\{"boolval":\{"boolval":true\}(?:,"location":)?\}\}', "true"),
        ('{"A_Const":{"boolval"', r'\{"A_Const":\{"boolval":\{\}(?:,"location":)?\}\}', "false"),
        ('{"A_Const":{"isnull"', r'\{"A_Const":\{"isnull":true(?:,"location":)?\}\}', "isnull"),
    ))


def shape_key(raw: str) -> str:
    """The parse tree with positions dropped and constants' values blanked (their kind kept).
    Sound by construction: the JSON is machine-written and a quote inside a JSON string is
    always escaped (`\"`), so no pattern here can match inside a string value (a DO body, an
    identifier): texts with one key differ in constants' values and positions only. (A string
    constant holding a brace is left as it is: a less shareable key, never a wrong one.)"""
    key = _LOCATIONS.sub('location":', raw)
    if "stmt_len" in key or "rexpr_list_" in key:
        key = _LENGTHS.sub('len":', key)
    for marker, pattern, blank in _CONSTANTS:
        if marker in key:
            key = pattern.sub(blank, key)
    return key


def extract_pg(sql: str, raw: str | None = None) -> tuple[QueryFacts, bool]:
    """Facts of `sql` (its JSON tree `raw` when already parsed), and whether they hold for
    every text of the same shape (no constant's value was looked at). `facts.kind_free` says
    whether they ignored even the kinds of constants (number, string, NULL...), which a
    normalized text does not keep (see normalized_shareable)."""
    if raw is None:
        raw = parse_pg(sql)
    out: list[_Acc] = []
    before, kinds_before = _reads[0], _kind_reads[0]
    _Extractor(sql, out, 0, frozenset()).run(None, "", fold_select=False, raw=raw)
    shareable = _reads[0] == before
    kind_free = shareable and _kind_reads[0] == kinds_before
    statements = tuple(a.freeze() for a in out)
    stateful = any(s.kind in ("prepare", "execute") or "deallocate" in s.flags for s in statements)
    return QueryFacts(statements, stateful, "postgres", kind_free), shareable


def normalized_key(sql: str) -> str | None:
    """PostgreSQL's own normalization of `sql` (libpg_query, as pg_stat_statements does it):
    each literal replaced by $n, without building a tree. None when it cannot be used: the text
    holds a `$` (a written parameter could share a form with a literal), or does not parse."""
    if "$" in sql:
        return None
    try:
        return "n:" + normalize(sql)
    except Exception:  # the full parse reports what is wrong
        return None


_NORMALIZABLE = frozenset({"select", "insert", "update", "delete"})


def normalized_shareable(raw: str, key: str, facts: QueryFacts) -> bool:
    """May `facts` be shared by every text with the normalized form `key`?

    normalize() replaces more than the constants of the tree (DO and function bodies, SET
    values, passwords: `DO 'harmless'` and `DO 'DELETE ...'` normalize alike) and skips some
    (type modifiers), and a $n keeps neither a constant's value nor its kind (`LIMIT ALL` and
    `LIMIT 5` both become `LIMIT $1`). So only plain SELECT/INSERT/UPDATE/DELETE trees whose
    facts ignored every constant's value and kind, with no options and no type modifiers, and
    where the placeholders are exactly the tree's constants, one for one."""
    if not facts.kind_free or '"DefElem"' in raw or '"typmods"' in raw:
        return False
    if not facts.statements or any(s.kind not in _NORMALIZABLE for s in facts.statements):
        return False
    return key.count("$") == raw.count('{"A_Const":{')


# ----------------------------------------------------------------------------------------------
# small readers of JSON nodes

def _unwrap(node: dict) -> tuple[str, dict]:
    (key, body), = node.items()
    return key, body


def _strings(items) -> list[str]:
    """[{"String": {"sval": "a"}}, ...] -> ["a", ...]"""
    out = []
    for item in items or ():
        if type(item) is dict and "String" in item:
            out.append(item["String"].get("sval", ""))
    return out


def _rv_name(rv: dict) -> str:
    schema = rv.get("schemaname")
    rel = rv.get("relname", "")
    return f"{schema}.{rel}" if schema else rel


# Counts every read of a constant's value. Facts whose extraction read none are the same for
# every text of the same shape (the parse tree with constants' values blanked out: see
# shape_key), so the cache can share them: pgbench's `... WHERE aid = 48213` is judged once.
# A global counter is safe even with threads: a read is never missed, at worst over-counted.
_reads = [0]
_kind_reads = [0]   # reads of a constant's kind only (NULL or not): the JSON shape keeps kinds


def _const(node) -> object:
    """The value of an A_Const node; raises _NotConst for anything else."""
    if type(node) is not dict or "A_Const" not in node:
        raise _NotConst
    _reads[0] += 1
    c = node["A_Const"]
    if c.get("isnull"):
        return None
    if "boolval" in c:
        return bool(c["boolval"].get("boolval", False))
    if "ival" in c:
        return int(c["ival"].get("ival", 0))
    if "fval" in c:
        return float(c["fval"].get("fval", "0"))
    if "sval" in c:
        return c["sval"].get("sval", "")
    if "bsval" in c:
        return c["bsval"].get("bsval", "")
    raise _NotConst


def _const_string(node) -> str | None:
    """A string constant, possibly cast and concatenated with `||`: 'DROP ' || 'TABLE t'."""
    try:
        value = _ConstEval.value(node)
    except (_NotConst, ValueError, TypeError, ArithmeticError):
        return None
    return value if isinstance(value, str) else None


def _defelems(items) -> list[tuple[str, object]]:
    out = []
    for item in items or ():
        if type(item) is dict and "DefElem" in item:
            d = item["DefElem"]
            out.append((d.get("defname", ""), d.get("arg")))
    return out


def _def_bool(arg) -> bool | None:
    """PostgreSQL's defGetBoolean: no argument means true; None when it cannot tell."""
    if arg is None:
        return True
    key, body = _unwrap(arg)
    if key == "Boolean":
        return bool(body.get("boolval", False))
    if key == "Integer":
        return bool(body.get("ival", 0))
    if key == "String":
        text = body.get("sval", "").lower()
        if text in ("true", "on"):
            return True
        if text in ("false", "off"):
            return False
    return None


def _def_string(arg) -> str | None:
    if arg is None:
        return None
    key, body = _unwrap(arg)
    if key == "String":
        return body.get("sval", "")
    if key == "List":
        items = _strings(body.get("items"))
        return items[0] if items else None
    return None


def _parse_qualified(text: str) -> str | None:
    """'Public."Users"' -> 'public.Users' (a regclass literal, folded as PostgreSQL folds it)."""
    parts: list[str] = []
    buf: list[str] = []
    i = 0
    text = text.strip()
    while i < len(text):
        ch = text[i]
        if ch == '"':
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    return None
                if text[k + 1:k + 2] == '"':
                    buf.append(text[j:k] + '"')
                    j = k + 2
                    continue
                buf.append(text[j:k])
                i = k + 1
                break
            continue
        if ch == ".":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch.lower())
        i += 1
    parts.append("".join(buf))
    parts = [p.strip() for p in parts]
    if not all(parts):
        return None
    return ".".join(parts[-2:])


# ----------------------------------------------------------------------------------------------
# WHERE analysis

TRUE, FALSE, CONST, ROW = 1, 2, 3, 4


class _NotConst(Exception):
    pass


def _text_bool(text: str) -> bool:
    """PostgreSQL's boolin: unique prefixes of true/false/yes/no, on/off, 1/0."""
    t = text.strip().lower()
    if t == "1" or t == "on":
        return True
    if t == "0" or (len(t) >= 2 and "off".startswith(t)):
        return False
    if t:
        for word, value in (("true", True), ("false", False), ("yes", True), ("no", False)):
            if word.startswith(t):
                return value
    raise ValueError(f"not a boolean: {text!r}")


_INT_TYPES = frozenset({"int2", "int4", "int8", "smallint", "integer", "bigint", "int"})
_FLOAT_TYPES = frozenset({"numeric", "decimal", "float4", "float8", "real", "double precision"})
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "char", "name", "character varying"})


class _ConstEval:
    """Evaluates expressions made only of constants (SQL three-valued logic, None is NULL)."""

    @staticmethod
    def value(node) -> object:
        if type(node) is not dict or len(node) != 1:
            raise _NotConst
        key, b = _unwrap(node)
        if key == "A_Const":
            return _const(node)
        if key == "TypeCast":
            v = _ConstEval.value(b.get("arg"))
            names = _strings((b.get("typeName") or {}).get("names"))
            tname = names[-1].lower() if names else ""
            if v is None:
                return None
            if tname in ("bool", "boolean"):
                if isinstance(v, bool):
                    return v
                if isinstance(v, int):
                    return v != 0
                if isinstance(v, str):
                    return _text_bool(v)
                raise _NotConst
            if tname in _INT_TYPES:
                return int(v) if not isinstance(v, str) else int(v.strip())
            if tname in _FLOAT_TYPES:
                return float(v)
            if tname in _TEXT_TYPES:
                return v if isinstance(v, str) else ("true" if v is True else "false" if v is False else str(v))
            raise _NotConst
        if key == "A_Expr" and b.get("kind") == "AEXPR_OP":
            op = _strings(b.get("name"))[-1:] or [""]
            op = op[0]
            right = _ConstEval.value(b.get("rexpr"))
            if b.get("lexpr") is None:
                if right is None:
                    return None
                if op == "-" and isinstance(right, (int, float)) and not isinstance(right, bool):
                    return -right
                if op == "+":
                    return right
                raise _NotConst
            left = _ConstEval.value(b.get("lexpr"))
            return _ConstEval.binary(op, left, right)
        if key == "BoolExpr":
            op = b.get("boolop")
            vals = [_ConstEval.truthy(a) for a in b.get("args") or ()]
            if op == "NOT_EXPR":
                v = vals[0]
                return None if v is None else not v
            if op == "AND_EXPR":
                if any(v is False for v in vals):
                    return False
                return None if any(v is None for v in vals) else True
            if op == "OR_EXPR":
                if any(v is True for v in vals):
                    return True
                return None if any(v is None for v in vals) else False
            raise _NotConst
        if key == "NullTest":
            v = _ConstEval.value(b.get("arg"))
            return (v is None) if b.get("nulltesttype") == "IS_NULL" else (v is not None)
        if key == "BooleanTest":
            v = _ConstEval.truthy(b.get("arg"))
            t = b.get("booltesttype")
            return {"IS_TRUE": v is True, "IS_NOT_TRUE": v is not True, "IS_FALSE": v is False,
                    "IS_NOT_FALSE": v is not False, "IS_UNKNOWN": v is None,
                    "IS_NOT_UNKNOWN": v is not None}.get(t, None)
        raise _NotConst

    @staticmethod
    def truthy(node) -> bool | None:
        v = _ConstEval.value(node)
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return _text_bool(v)
        raise _NotConst

    @staticmethod
    def binary(op: str, left, right):
        if op == "||":
            if left is None or right is None:
                return None
            if isinstance(left, str) or isinstance(right, str):
                return _ConstEval.text(left) + _ConstEval.text(right)
            raise _NotConst
        if left is None or right is None:
            return None
        left, right = _ConstEval.coerce(left, right)
        if op == "=":
            return left == right
        if op in ("<>", "!="):
            return left != right
        if op == "<":
            return left < right
        if op == ">":
            return left > right
        if op == "<=":
            return left <= right
        if op == ">=":
            return left >= right
        if isinstance(left, bool) or isinstance(right, bool) or isinstance(left, str) or isinstance(right, str):
            raise _NotConst
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        raise _NotConst

    @staticmethod
    def text(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    @staticmethod
    def coerce(left, right):
        if type(left) is type(right):
            return left, right
        if isinstance(left, str) and isinstance(right, bool):
            return _text_bool(left), right
        if isinstance(right, str) and isinstance(left, bool):
            return left, _text_bool(right)
        if isinstance(left, str) and isinstance(right, (int, float)):
            return type(right)(left.strip()), right
        if isinstance(right, str) and isinstance(left, (int, float)):
            return left, type(left)(right.strip())
        if isinstance(left, (int, float)) and isinstance(right, (int, float)) \
                and not isinstance(left, bool) and not isinstance(right, bool):
            return left, right
        raise _NotConst


def _and(a: int, b: int | None) -> int:
    if b is None:
        return a
    if a == FALSE or b == FALSE:
        return FALSE
    if a == TRUE and b == TRUE:
        return TRUE
    if a in (TRUE, CONST) and b in (TRUE, CONST):
        return CONST
    return ROW


class _Truth:
    """Sorts a WHERE condition into TRUE / FALSE / CONST (row-independent) / ROW."""

    def __init__(self, quals: set[str], other_cols: set[str], variables: frozenset[str]):
        self.quals = quals
        self.other_cols = other_cols
        self.vars = variables

    def _column_is_row(self, fields: list) -> bool:
        names = [f["String"].get("sval", "") if "String" in f else "*" for f in fields]
        if len(names) == 1:
            name = names[0]
            return name not in self.vars and name not in self.other_cols
        return self._is_target(names)

    def _is_target(self, names: list[str]) -> bool:
        """Is `names[:-1]` (a column's qualifier) the target table: `t`, `alias`, `s.t`?"""
        return ".".join(names[:-1]) in self.quals or (len(names) > 2 and names[-2] in self.quals)

    def depends_on_row(self, node) -> bool:
        stack = [node]
        while stack:
            v = stack.pop()
            if type(v) is list:
                stack.extend(v)
            elif type(v) is dict:
                if len(v) == 1:
                    if "ColumnRef" in v:
                        if self._column_is_row(v["ColumnRef"].get("fields") or []):
                            return True
                        continue
                    if "CurrentOfExpr" in v:
                        return True
                stack.extend(x for x in v.values() if type(x) in (dict, list))
        return False

    def canon(self, v, values: bool = True):
        """A comparable form of an expression: positions dropped, the target's own qualifier
        dropped from its columns; constants' values only when `values` (that counts as a read)."""
        if type(v) is dict:
            if len(v) == 1:
                if "ColumnRef" in v:
                    fields = v["ColumnRef"].get("fields") or []
                    names = [f["String"].get("sval", "") if "String" in f else "*" for f in fields]
                    if len(names) >= 2 and self._is_target(names):
                        names = names[-1:]
                    return ("col", tuple(names))
                if "A_Const" in v:
                    if not values:
                        return ("const",)   # kind-blind too: a normalized text keeps no kinds
                    _reads[0] += 1
            return tuple(sorted((k, self.canon(x, values)) for k, x in v.items() if k != "location"))
        if type(v) is list:
            return tuple(self.canon(x, values) for x in v)
        return v

    def same(self, a, b) -> bool:
        """Structurally equal; constants' values are looked at only when all else is equal."""
        return self.canon(a, False) == self.canon(b, False) and self.canon(a) == self.canon(b)

    def const_truth(self, node) -> int:
        try:
            v = _ConstEval.truthy(node)
        except (_NotConst, ValueError, TypeError, ArithmeticError, IndexError, KeyError):
            return CONST
        if v is True:
            return TRUE
        return FALSE  # false or NULL: no row qualifies

    def truth(self, node) -> int:
        if type(node) is not dict or len(node) != 1:
            return ROW
        if not self.depends_on_row(node):
            return self.const_truth(node)
        key, b = _unwrap(node)
        if key == "BoolExpr":
            op = b.get("boolop")
            args = b.get("args") or []
            if op == "NOT_EXPR" and args:
                t = self.truth(args[0])
                return {TRUE: FALSE, FALSE: TRUE}.get(t, t)
            truths = [self.truth(a) for a in args]
            if op == "AND_EXPR":
                result = TRUE
                for t in truths:
                    result = _and(result, t)
                return result
            if op == "OR_EXPR":
                if TRUE in truths or self._complementary(args):
                    return TRUE
                if CONST in truths:
                    return CONST
                if all(t == FALSE for t in truths):
                    return FALSE
                return ROW
            return ROW
        if key == "A_Expr":
            return self._a_expr(b)
        if key == "BooleanTest":
            t = self.truth(b.get("arg"))
            kind = b.get("booltesttype")
            if t in (TRUE, FALSE):
                positive = t == TRUE
                return TRUE if {"IS_TRUE": positive, "IS_NOT_FALSE": positive,
                                "IS_FALSE": not positive, "IS_NOT_TRUE": not positive,
                                "IS_NOT_UNKNOWN": True}.get(kind, False) else FALSE
            return t if kind in ("IS_TRUE", "IS_NOT_FALSE", "IS_FALSE", "IS_NOT_TRUE") else ROW
        if key == "TypeCast":
            names = _strings((b.get("typeName") or {}).get("names"))
            if names and names[-1] in ("bool", "boolean"):
                return self.truth(b.get("arg"))
            return ROW
        return ROW

    def _complementary(self, args: list) -> bool:
        """`x OR NOT x`, `x IS NULL OR x IS NOT NULL`."""
        plain, negated, nulls, notnulls = set(), set(), set(), set()
        for a in args:
            if type(a) is not dict or len(a) != 1:
                continue
            key, b = _unwrap(a)
            if key == "BoolExpr" and b.get("boolop") == "NOT_EXPR" and b.get("args"):
                negated.add(self.canon(b["args"][0]))
            elif key == "NullTest":
                (nulls if b.get("nulltesttype") == "IS_NULL" else notnulls).add(self.canon(b.get("arg")))
            plain.add(self.canon(a))
        return bool(plain & negated or nulls & notnulls)

    def _a_expr(self, b: dict) -> int:
        kind = b.get("kind")
        op = (_strings(b.get("name")) or [""])[-1]
        left, right = b.get("lexpr"), b.get("rexpr")
        if left is None or right is None:
            return ROW
        if kind == "AEXPR_OP":
            if op in ("=", "<=", ">=", "~~", "~~*") and self.same(left, right):
                return TRUE
            if op in ("<>", "!=", "<", ">") and self.same(left, right):
                return FALSE
            if op in ("~", "~*"):
                pattern = _const_string(right)
                if pattern is not None and pattern in ("", ".*", "^", "^.*", ".*$", "^.*$"):
                    return TRUE
            if op in ("=", "<>", "!="):  # (id = id) = true, true <> (id <> id)
                for expr, other in ((left, right), (right, left)):
                    if self.depends_on_row(other):
                        continue
                    t = self.truth(expr)  # structural first: `aid = 5` reads no constant
                    if t not in (TRUE, FALSE):
                        continue
                    try:
                        value = _ConstEval.truthy(other)
                    except (_NotConst, ValueError, TypeError, ArithmeticError):
                        continue
                    if value is None:
                        return FALSE
                    equal = (t == TRUE) == value
                    return TRUE if equal == (op == "=") else FALSE
            return ROW
        if kind == "AEXPR_NOT_DISTINCT" and self.same(left, right):
            return TRUE
        if kind == "AEXPR_DISTINCT" and self.same(left, right):
            return FALSE
        if kind == "AEXPR_IN" and op == "=":
            items = right.get("List", {}).get("items") if type(right) is dict else right
            if isinstance(items, list):
                if any(self.same(left, x) for x in items):
                    return TRUE
            return ROW
        if kind in ("AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_SIMILAR") and op in ("~~", "~~*"):
            pattern = _const_string(right)
            if pattern is not None and pattern and set(pattern) == {"%"}:
                return TRUE
        return ROW


def _select_names(sel: dict) -> set[str]:
    out: set[str] = set()
    while sel:
        for t in sel.get("targetList") or ():
            rt = t.get("ResTarget", {})
            if rt.get("name"):
                out.add(rt["name"])
            else:
                val = rt.get("val") or {}
                if "ColumnRef" in val:
                    names = _strings(val["ColumnRef"].get("fields"))
                    if names:
                        out.add(names[-1])
                elif "FuncCall" in val:
                    names = _strings(val["FuncCall"].get("funcname"))
                    if names:
                        out.add(names[-1])
        values = sel.get("valuesLists")
        if values:
            first = values[0].get("List", {}).get("items") or []
            out.update(f"column{i}" for i in range(1, len(first) + 1))
        sel = (sel.get("larg") or {}) if sel.get("op") not in (None, "SETOP_NONE") else {}
    return out


def _exposed(items) -> set[str]:
    """Column names that USING / FROM items of UPDATE, DELETE, MERGE make visible (when the
    parse tree tells: subselects, VALUES, functions, aliases with column lists)."""
    out: set[str] = set()
    stack = list(items or ())
    while stack:
        item = stack.pop()
        if type(item) is not dict or len(item) != 1:
            continue
        key, b = _unwrap(item)
        alias = b.get("alias") or {}
        cols = _strings(alias.get("colnames"))
        out.update(cols)
        if key == "RangeSubselect" and not cols:
            out.update(_select_names((b.get("subquery") or {}).get("SelectStmt") or {}))
        elif key == "RangeFunction":
            if alias.get("aliasname"):
                out.add(alias["aliasname"])
            scan = [b.get("functions")]
            while scan:
                v = scan.pop()
                if type(v) is list:
                    scan.extend(v)
                elif type(v) is dict:
                    if "FuncCall" in v:
                        names = _strings(v["FuncCall"].get("funcname"))
                        if names:
                            out.add(names[-1])
                    else:
                        scan.extend(x for x in v.values() if type(x) in (dict, list))
        elif key == "JoinExpr":
            stack.extend([b.get("larg"), b.get("rarg")])
    return out


def _quals(rv: dict) -> set[str]:
    rel = rv.get("relname", "")
    quals = {rel}
    if rv.get("schemaname"):
        quals.add(f"{rv['schemaname']}.{rel}")
    alias = (rv.get("alias") or {}).get("aliasname")
    if alias:
        quals.add(alias)
    return quals


# ----------------------------------------------------------------------------------------------
# the walker

class _Extractor:
    def __init__(self, text: str, out: list[_Acc], depth: int, variables: frozenset[str]):
        if depth > MAX_NESTING:
            raise SqlParseError("statements nested too deeply for wireproxy to judge")
        self.text = text
        self.out = out
        self.depth = depth
        self.vars = variables
        self._bytes: bytes | None = None

    # -- entry points ---------------------------------------------------------------------------

    def run(self, parent: _Acc | None, via: str, *, fold_select: bool, raw: str | None = None) -> None:
        """Judge every statement of self.text; with fold_select, plain SELECTs belong to
        `parent` (an expression or query inside PL/pgSQL), other statements nest under it."""
        tree = json.loads(raw if raw is not None else parse_pg(self.text))
        for item in tree.get("stmts") or ():
            node = item.get("stmt")
            if not node:
                continue
            key, body = _unwrap(node)
            if fold_select and parent is not None and key == "SelectStmt" and "intoClause" not in body:
                self.walk(body, parent, frozenset())
            else:
                self.statement(key, body, via, frozenset(),
                               loc=item.get("stmt_location", 0), length=item.get("stmt_len", 0))

    def nested_text(self, text: str, parent: _Acc, via: str, variables: frozenset[str]) -> None:
        _Extractor(text, self.out, self.depth + 1, variables).run(parent, via, fold_select=True)

    def statement(self, key: str, body: dict, via: str, scope: frozenset[str], *,
                  loc: int | None = None, length: int | None = None) -> _Acc:
        if self.depth > MAX_NESTING:
            raise SqlParseError("statements nested too deeply for wireproxy to judge")
        acc = _Acc(_kind_of(key, body), via)
        self.out.append(acc)
        self.depth += 1
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
        finally:
            self.depth -= 1
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
        acc.functions.add(".".join(names[-2:]))
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

    def _plpgsql_walk(self, root, acc: _Acc, via: str, variables: frozenset[str]) -> None:
        stack = [root]
        while stack:
            value = stack.pop()
            if type(value) is list:
                stack.extend(reversed(value))
                continue
            if type(value) is not dict:
                continue
            for key, body in value.items():
                if key == "PLpgSQL_expr" and type(body) is dict:
                    self._pl_expr(body, acc, via, variables, dynamic=False)
                    continue
                field = self._DYNAMIC.get(key)
                if field is not None and type(body) is dict:
                    dyn = body.get(field)
                    if type(dyn) is dict and "PLpgSQL_expr" in dyn:
                        self._pl_expr(dyn["PLpgSQL_expr"], acc, via, variables, dynamic=True)
                    stack.extend(v for k, v in body.items() if k != field and type(v) in (dict, list))
                    continue
                if type(body) in (dict, list):
                    stack.append(body)

    def _pl_expr(self, expr: dict, acc: _Acc, via: str, variables: frozenset[str], *, dynamic: bool) -> None:
        query = expr.get("query") or ""
        mode = expr.get("parseMode", 0)
        if dynamic:
            probe = _Extractor("SELECT " + query, self.out, self.depth + 1, variables)
            stmts = _parse_json(probe.text).get("stmts") or []
            text = None
            if len(stmts) == 1:
                target = (stmts[0]["stmt"].get("SelectStmt") or {}).get("targetList") or []
                if len(target) == 1:
                    text = _const_string(target[0].get("ResTarget", {}).get("val"))
            if text is not None:
                self.nested_text(text, acc, f"{via} EXECUTE", frozenset())
            else:
                acc.flags.add("dynamic_sql")
                for item in stmts:
                    probe.walk(item["stmt"], acc, frozenset())
            return
        if mode == 0:
            self.nested_text(query, acc, via, variables)
        elif mode == 2:
            self.nested_text("SELECT " + query, acc, via, variables)
        else:  # assignment: "target := expr" or "target = expr"
            self.nested_text("SELECT " + query.replace(":=", "=", 1), acc, via, variables)


def _parse_json(text: str) -> dict:
    return json.loads(parse_pg(text))


def _kind_of(key: str, body: dict) -> str:
    kind = _KIND.get(key)
    if kind == "select":
        return "create" if body.get("intoClause") else "select"
    if kind is not None:
        return kind
    if key == "CopyStmt":
        return "copy_from" if body.get("is_from") else "copy_to"
    if key in ("GrantStmt", "GrantRoleStmt"):
        return "grant" if body.get("is_grant") else "revoke"
    if key.startswith("Create"):
        return "create"
    if key.startswith("Alter"):
        return "alter"
    if key.startswith("Drop"):
        return "drop"
    return "other"


# ----------------------------------------------------------------------------------------------
# statement handlers: (extractor, body, acc, scope, loc, length)

def _h_select(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    into = b.get("intoClause")
    if type(into) is dict and type(into.get("rel")) is dict:
        ex.target(into["rel"], acc)
    limit = b.get("limitCount")
    if limit is not None:  # LIMIT ALL is a NULL constant (its null-ness is part of the shape)
        if type(limit) is dict and "A_Const" in limit:
            _kind_reads[0] += 1
            acc.has_limit = not limit["A_Const"].get("isnull")
        else:
            acc.has_limit = True
    ex.walk(b, acc, scope)


def _h_update_delete(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    rv = b.get("relation") or {}
    if acc.kind == "update" and rv.get("relname") == "pg_settings" and rv.get("schemaname") in (None, "pg_catalog"):
        acc.flags.update(("set_role", "search_path"))  # UPDATE pg_settings calls set_config
    where = b.get("whereClause")
    if where is not None:
        acc.has_where = True
        items = b.get("usingClause") or b.get("fromClause") or []
        truth = _Truth(_quals(rv), _exposed(items), ex.vars).truth(where)
        acc.taut = truth in (TRUE, CONST)
    ex.walk(b, acc, scope)


def _h_merge(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    rv = b.get("relation") or {}
    name = _rv_name(rv)
    truth = _Truth(_quals(rv), _exposed([b.get("sourceRelation")]), ex.vars)
    join = b.get("joinCondition")
    join_truth = truth.truth(join) if join is not None else TRUE
    for item in b.get("mergeWhenClauses") or ():
        clause = item.get("MergeWhenClause") or {}
        kind = {"CMD_UPDATE": "update", "CMD_DELETE": "delete", "CMD_INSERT": "insert"}.get(clause.get("commandType"))
        if kind is None:
            continue
        action = _Acc(kind, "MERGE action")
        ex.out.append(action)
        action.targets.add(name)
        action.tables.add(name)
        if kind == "insert":
            continue
        cond = clause.get("condition")
        cond_truth = truth.truth(cond) if cond is not None else None
        if clause.get("matchKind") == "MERGE_WHEN_MATCHED":
            action.has_where = True
            action.taut = _and(join_truth, cond_truth) in (TRUE, CONST)
        else:  # NOT MATCHED BY SOURCE: every target row the source does not match
            action.has_where = cond is not None
            action.taut = cond_truth in (TRUE, CONST)
    ex.walk(b, acc, scope, via="MERGE")


def _h_insert(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    ex.walk(b, acc, scope)


def _h_copy(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("is_program"):
        acc.flags.add("copy_program")
    elif b.get("filename") is not None:
        acc.flags.add("copy_file")
    ex.walk(b, acc, scope, via="COPY query")


def _h_drop(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("removeType") in _TABLE_OBJECTS:
        for obj in b.get("objects") or ():
            names = _strings((obj.get("List") or {}).get("items")) if type(obj) is dict else []
            if names:
                name = ".".join(names[-2:])
                acc.targets.add(name)
                acc.tables.add(name)
    ex.walk(b, acc, scope)


def _h_truncate(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for item in b.get("relations") or ():
        if type(item) is dict and "RangeVar" in item:
            ex.target(item["RangeVar"], acc)
    ex.walk(b, acc, scope)


def _h_alter_table(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for item in b.get("cmds") or ():
        if (item.get("AlterTableCmd") or {}).get("subtype") == "AT_DropColumn":
            acc.flags.add("drop_column")
    ex.walk(b, acc, scope)


def _h_grant(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("targtype", "ACL_TARGET_OBJECT") == "ACL_TARGET_OBJECT" and b.get("objtype") in _TABLE_OBJECTS:
        for item in b.get("objects") or ():
            if type(item) is dict and "RangeVar" in item:
                ex.target(item["RangeVar"], acc)
    ex.walk(b, acc, scope)


def _h_grant_role(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for item in b.get("granted_roles") or ():
        name = (item.get("AccessPriv") or {}).get("priv_name") if type(item) is dict else None
        if name:
            acc.roles.add(name)
    ex.walk(b, acc, scope)


def _role_options(b: dict, acc: _Acc) -> None:
    for name, arg in _defelems(b.get("options")):
        flag = _ROLE_FLAGS.get(name)
        if flag and _def_bool(arg) is not False:
            acc.flags.add(flag)


def _h_create_role(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("role"):
        acc.roles.add(b["role"])
    _role_options(b, acc)
    ex.walk(b, acc, scope)


def _h_alter_role(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    _role_options(b, acc)
    ex.walk(b, acc, scope)


def _h_alter_system(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.flags.add("alter_system")
    ex.walk(b, acc, scope)


def _h_create_function(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    options = _defelems(b.get("options"))
    language = None
    body: list[str] = []
    for name, arg in options:
        if name == "language":
            language = (_def_string(arg) or "").lower()
        elif name == "security" and _def_bool(arg) is not False:
            acc.flags.add("security_definer")
        elif name == "as" and type(arg) is dict:
            key, value = _unwrap(arg)
            body = _strings(value.get("items")) if key == "List" else [value.get("sval", "")] if key == "String" else []
    params = frozenset(p["FunctionParameter"]["name"] for p in b.get("parameters") or ()
                       if type(p) is dict and (p.get("FunctionParameter") or {}).get("name"))
    sql_body = b.get("sql_body")
    if language is None:
        language = "sql"
    if sql_body is not None:
        saved, ex.vars = ex.vars, ex.vars | params
        try:
            ex.walk(sql_body, acc, scope, via="function body")
        finally:
            ex.vars = saved
    elif language == "sql":
        for text in body[:1]:
            ex.nested_text(text, acc, "function body", params)
    elif language == "plpgsql":
        if body:
            ex.plpgsql(ex.statement_text(loc, length), acc, "function body")
    else:
        acc.flags.add("opaque_code")
        if language == "internal" and body:
            acc.functions.add(body[0])
    ex.walk(b, acc, scope, skip=("sql_body",))


def _h_alter_function(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for name, arg in _defelems(b.get("actions")):
        if name == "security" and _def_bool(arg) is not False:
            acc.flags.add("security_definer")
    ex.walk(b, acc, scope)


def _h_do(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    language = "plpgsql"
    code = None
    for name, arg in _defelems(b.get("args")):
        if name == "language":
            language = (_def_string(arg) or "").lower()
        elif name == "as":
            code = _def_string(arg)
    if language == "plpgsql":
        if code is not None:
            ex.plpgsql(ex.statement_text(loc, length), acc, "DO block")
    else:
        acc.flags.add("opaque_code")


def _h_foreign(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.flags.add("foreign_data")
    base = b.get("base")
    if type(base) is dict and type(base.get("relation")) is dict:
        ex.target(base["relation"], acc)
    ex.walk(b, acc, scope)


def _h_create_extension(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    name = (b.get("extname") or "").lower()
    if name in _FDW_EXTENSIONS or name.endswith("_fdw"):
        acc.flags.add("foreign_data")
    ex.walk(b, acc, scope)


def _h_load(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.flags.add("load_library")


def _h_explain(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    analyze = False
    for name, arg in _defelems(b.get("options")):
        if name.lower() in ("analyze", "analyse") and _def_bool(arg) is not False:
            analyze = True  # unreadable values count as true: fail closed
    query = b.get("query")
    if type(query) is dict and len(query) == 1:
        key, body = _unwrap(query)
        if analyze:
            ex.statement(key, body, "EXPLAIN ANALYZE", scope)
        else:
            ex.walk(query, acc, scope, nest=False)


def _h_prepare(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.name = b.get("name") or ""
    _named_query(ex, b, acc, scope, f"PREPARE {acc.name}")


def _named_query(ex: _Extractor, b: dict, acc: _Acc, scope, via: str) -> None:
    """PREPARE and DECLARE: the query they name is judged as a statement of its own."""
    query = b.get("query")
    if type(query) is dict and len(query) == 1:
        key, body = _unwrap(query)
        start = len(ex.out)
        ex.statement(key, body, via, scope)
        acc.inner = [a for a in ex.out[start:]]
    ex.walk(b, acc, scope, skip=("query",))


def _h_declare(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.name = b.get("portalname") or ""
    acc.flags.add("cursor")
    _named_query(ex, b, acc, scope, f"DECLARE {acc.name}")


def _h_fetch(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.name = b.get("portalname") or ""
    acc.flags.add("fetch")


def _h_execute(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.name = b.get("name") or ""
    ex.walk(b, acc, scope)


def _h_deallocate(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.flags.add("deallocate")
    acc.name = None if b.get("isall") else (b.get("name") or "")


def _h_discard(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("target") == "DISCARD_ALL":
        acc.flags.add("deallocate")


def _h_create_table_as(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    into = b.get("into") or {}
    if type(into.get("rel")) is dict:
        ex.target(into["rel"], acc)
    ex.walk(b, acc, scope, via="CREATE TABLE AS")


def _h_call(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    call = b.get("funccall")
    if type(call) is dict:
        ex.funccall(call, acc)
    ex.walk(b, acc, scope)


def _h_default_privileges(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    action = b.get("action")
    if type(action) is dict:
        ex.statement("GrantStmt", action, "ALTER DEFAULT PRIVILEGES", scope)
    ex.walk(b, acc, scope, skip=("action",))


def _h_schema(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    ex.walk(b, acc, scope, via="CREATE SCHEMA")


def _h_rule(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    ex.walk(b, acc, scope, via="CREATE RULE action")


def _h_trigger(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    names = _strings(b.get("funcname"))
    if names:
        acc.functions.add(".".join(names[-2:]))
    ex.walk(b, acc, scope)


def _h_cast(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    func = b.get("func")
    if type(func) is dict:
        names = _strings(func.get("objname"))
        if names:
            acc.functions.add(".".join(names[-2:]))
    ex.walk(b, acc, scope)


def _h_define(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for name, arg in _defelems(b.get("definition")):
        if name.lower() in _FUNC_DEFELEMS and type(arg) is dict and len(arg) == 1:
            key, value = _unwrap(arg)
            names = _strings(value.get("names") if key == "TypeName" else value.get("items"))
            if names:
                acc.functions.add(".".join(names[-2:]))
    ex.walk(b, acc, scope)


def _h_set(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    ex.varset(b, acc)
    ex.walk(b, acc, scope)


def _h_refresh(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    rv = b.get("relation")
    if type(rv) is dict and "relname" in rv:
        ex.target(rv, acc)
    ex.walk(b, acc, scope)


_HANDLERS = {
    "SelectStmt": _h_select, "InsertStmt": _h_insert, "UpdateStmt": _h_update_delete,
    "DeleteStmt": _h_update_delete, "MergeStmt": _h_merge, "CopyStmt": _h_copy,
    "DropStmt": _h_drop, "TruncateStmt": _h_truncate, "AlterTableStmt": _h_alter_table,
    "GrantStmt": _h_grant, "GrantRoleStmt": _h_grant_role, "CreateRoleStmt": _h_create_role,
    "AlterRoleStmt": _h_alter_role, "AlterSystemStmt": _h_alter_system,
    "CreateFunctionStmt": _h_create_function, "AlterFunctionStmt": _h_alter_function,
    "DoStmt": _h_do, "CreateFdwStmt": _h_foreign, "AlterFdwStmt": _h_foreign,
    "CreateForeignServerStmt": _h_foreign, "AlterForeignServerStmt": _h_foreign,
    "CreateUserMappingStmt": _h_foreign, "AlterUserMappingStmt": _h_foreign,
    "ImportForeignSchemaStmt": _h_foreign, "CreateForeignTableStmt": _h_foreign,
    "CreateExtensionStmt": _h_create_extension, "LoadStmt": _h_load,
    "CreateSubscriptionStmt": _h_foreign, "AlterSubscriptionStmt": _h_foreign,
    "ExplainStmt": _h_explain, "PrepareStmt": _h_prepare, "ExecuteStmt": _h_execute,
    "DeallocateStmt": _h_deallocate, "DiscardStmt": _h_discard,
    "DeclareCursorStmt": _h_declare, "FetchStmt": _h_fetch,
    "CreateTableAsStmt": _h_create_table_as, "CallStmt": _h_call,
    "AlterDefaultPrivilegesStmt": _h_default_privileges, "CreateSchemaStmt": _h_schema,
    "RuleStmt": _h_rule, "CreateTrigStmt": _h_trigger, "CreateEventTrigStmt": _h_trigger,
    "CreateCastStmt": _h_cast, "DefineStmt": _h_define, "VariableSetStmt": _h_set,
    "RefreshMatViewStmt": _h_refresh,
}
