"""Conditions that hold for every row though no literal says so (the extended WHERE checks).

Two families, each with a name a rule file can leave out (`where_checks` on a rule):

- `self_subquery`: the table compared with itself. `id IN (SELECT id FROM t)`, `EXISTS (SELECT 1
  FROM t t2 WHERE t2.id = t.id)` and `USING t AS t2 WHERE t.id = t2.id` (also a MERGE whose
  source is its own target, joined column to same column) reach every row whose column is not
  NULL.
- `value_range`: a comparison every value of the column's type satisfies: `name >= ''` (every
  string sorts after the empty one), `x > '-infinity'`, `id > -9223372036854775809` or
  `id <= 9223372036854775807` (beyond the 64-bit integers), `length(x) >= 0`, `abs(x) >= 0`.
  Without the catalog the column's type is not known: a bound past every 64-bit integer is
  taken to bound nothing on numeric and float columns too, which is true of any real table.

The functions take the `_Truth` of the statement (where.py) and return an outcome of
policy.truth or None when their pattern does not apply.
"""

from __future__ import annotations

from wireproxy.policy.facttypes import WHERE_CHECKS
from wireproxy.policy.pgfacts.nodes import _kind_reads, _range_kind_read, _reads, _strings, _unwrap
from wireproxy.policy.pgfacts.consteval import _ConstEval
from wireproxy.policy.pgfacts.nodes import _NotConst
from wireproxy.policy.truth import FALSE, TRUE, of_value

EXTENDED_CHECKS = tuple(WHERE_CHECKS)

_INT8_MIN = -9223372036854775808
_INT8_MAX = 9223372036854775807
_NON_NEGATIVE = frozenset({"length", "char_length", "character_length", "octet_length",
                           "bit_length", "abs", "cardinality", "array_length", "pg_column_size"})
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _column_names(node) -> list[str] | None:
    if type(node) is dict and "ColumnRef" in node:
        fields = node["ColumnRef"].get("fields") or []
        return [f["String"].get("sval", "") if "String" in f else "*" for f in fields]
    return None


def _row_column(truth, node) -> str | None:
    """The target row's column named by `node` (a ColumnRef of the row), else None."""
    names = _column_names(node)
    if names is None or names[-1] == "*":
        return None
    if truth._column_is_row(node["ColumnRef"].get("fields") or []):
        return names[-1]
    return None


def range_truth(truth, op: str, left, right) -> int | None:
    """`column <op> constant` (either way round) that every value satisfies."""
    if op not in _FLIP:
        return None
    for col, const, o in ((left, right, op), (right, left, _FLIP[op])):
        if type(const) is not dict or "A_Const" not in const:
            continue
        value = const["A_Const"]
        _range_kind_read()   # which kind of constant: a normalized text ($n) does not keep it
        if not truth.depends_on_row(col):   # any expression of the row: coalesce(name, '') >= ''
            continue
        if _non_negative_call(truth, col):
            if o == ">=" and "ival" in value:
                _reads[0] += 1
                if value["ival"].get("ival", 0) == 0:
                    return _used(truth)
            continue
        if "fval" in value and o in (">", ">=", "<", "<="):
            _reads[0] += 1
            try:
                number = float(value["fval"].get("fval", "0"))
            except ValueError:
                continue
            if (o in (">", ">=") and number <= _INT8_MIN) or (o in ("<", "<=") and number >= _INT8_MAX):
                return _used(truth)
        elif "sval" in value and o in (">", ">="):
            _reads[0] += 1
            text = value["sval"].get("sval", "")
            if (text == "" and o == ">=") or text.strip().lower() == "-infinity":
                return _used(truth)
        elif "sval" in value and o in ("<", "<="):
            _reads[0] += 1
            if value["sval"].get("sval", "").strip().lower() in ("infinity", "+infinity"):
                return _used(truth)
    return None


def between_truth(truth, kind: str, b: dict) -> int | None:
    """`x BETWEEN 5 AND 1` is false for every row (an empty range), NOT BETWEEN true."""
    if kind not in ("AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN") or not truth.extended:
        return None
    items = (b.get("rexpr") or {}).get("List", {}).get("items") if type(b.get("rexpr")) is dict else b.get("rexpr")
    if not isinstance(items, list) or len(items) != 2:
        return None
    bounds = []
    for item in items:
        c = item.get("A_Const") if type(item) is dict else None
        _kind_reads[0] += 1
        if c is None or not ("ival" in c or "fval" in c):
            return None
        _reads[0] += 1
        try:
            bounds.append(float(c["ival"].get("ival", 0)) if "ival" in c else float(c["fval"].get("fval", "0")))
        except ValueError:
            return None
    if bounds[0] <= bounds[1]:
        return None
    truth.used.add("value_range")
    return FALSE if kind == "AEXPR_BETWEEN" else TRUE


def _non_negative_call(truth, node) -> bool:
    if type(node) is not dict or "FuncCall" not in node:
        return False
    names = _strings(node["FuncCall"].get("funcname"))
    return bool(names) and names[-1] in _NON_NEGATIVE and truth.depends_on_row(node)


def _used(truth, check: str = "value_range") -> int | None:
    if not truth.extended:
        return None
    truth.used.add(check)
    return TRUE


def self_join_truth(truth, left, right) -> int | None:
    """`t.c = t2.c` where t2 is another scan of the target table (USING, FROM, MERGE source)."""
    a, b = _column_names(left), _column_names(right)
    if a is None or b is None or a[-1] != b[-1] or a[-1] == "*":
        return None
    for own, other in ((a, b), (b, a)):
        if len(other) >= 2 and other[-2] in truth.self_aliases and len(own) >= 1 \
                and (len(own) == 1 or truth._is_target(own)):
            return _used(truth, "self_subquery")
    return None


def _single_scan(select: dict, target: tuple[str | None, str]) -> set[str] | None:
    """The qualifiers of a subquery that reads only the target table (once, unlimited), or None."""
    if select.get("op") not in (None, "SETOP_NONE") or select.get("limitCount") is not None:
        return None
    if select.get("groupClause") or select.get("havingClause") or select.get("withClause"):
        return None
    items = select.get("fromClause") or []
    if len(items) != 1 or type(items[0]) is not dict or "RangeVar" not in items[0]:
        return None
    rv = items[0]["RangeVar"]
    schema, name = target
    if rv.get("relname") != name or (rv.get("schemaname") and schema and rv["schemaname"] != schema):
        return None
    alias = (rv.get("alias") or {}).get("aliasname")
    return {alias} if alias else {name}   # an alias hides the table's own name


def sublink_truth(truth, b: dict) -> int | None:
    """IN / = ANY / EXISTS over a subquery that scans the target table itself."""
    if truth.target is None:
        return None
    sub = (b.get("subselect") or {}).get("SelectStmt")
    if type(sub) is not dict:
        return None
    inner = _single_scan(sub, truth.target)
    if inner is None:
        return None
    kind = b.get("subLinkType")
    if kind == "EXISTS_SUBLINK":
        where = sub.get("whereClause")
        if where is None or _correlated_on_same_columns(truth, where, inner):
            return _used(truth, "self_subquery")
        return None
    if kind == "ANY_SUBLINK" and (_strings(b.get("operName")) or ["="])[-1] == "=":
        column = _row_column(truth, b.get("testexpr"))
        targets = sub.get("targetList") or []
        if column is None or len(targets) != 1 or sub.get("whereClause") is not None:
            return None
        names = _column_names((targets[0].get("ResTarget") or {}).get("val"))
        if names and names[-1] == column and (len(names) == 1 or ".".join(names[:-1]) in inner):
            return _used(truth, "self_subquery")
    return None


def _correlated_on_same_columns(truth, where, inner: set[str]) -> bool:
    """WHERE made only of `inner.c = outer.c` terms (ANDed), the same column on both sides."""
    key, body = _unwrap(where) if type(where) is dict and len(where) == 1 else ("", {})
    if key == "BoolExpr" and body.get("boolop") == "AND_EXPR":
        return all(_correlated_on_same_columns(truth, a, inner) for a in body.get("args") or ())
    if key != "A_Expr" or body.get("kind") != "AEXPR_OP" or (_strings(body.get("name")) or [""])[-1] != "=":
        return False
    a, b = _column_names(body.get("lexpr")), _column_names(body.get("rexpr"))
    if a is None or b is None or a[-1] != b[-1]:
        return False
    for mine, outer in ((a, b), (b, a)):
        if len(mine) >= 2 and ".".join(mine[:-1]) in inner and len(outer) >= 2 \
                and ".".join(outer[:-1]) not in inner and truth._is_target(outer):
            return True
    return False


def joins_itself(truth, cond) -> bool:
    """Does `cond` hold a `t.c = t2.c` between the target and another scan of it?"""
    stack = [cond]
    while stack:
        v = stack.pop()
        if type(v) is list:
            stack.extend(v)
        elif type(v) is dict:
            expr = v.get("A_Expr") if len(v) == 1 else None
            if type(expr) is dict and expr.get("kind") == "AEXPR_OP" and (_strings(expr.get("name")) or [""])[-1] == "=":
                a, b = _column_names(expr.get("lexpr")), _column_names(expr.get("rexpr"))
                if a and b and a[-1] == b[-1] and any(len(n) == 2 and n[0] in truth.self_aliases for n in (a, b)):
                    return True
            stack.extend(x for x in v.values() if type(x) in (dict, list))
    return False


def constant_sublink(node) -> int | None:
    """EXISTS (SELECT <constants>) is true, NOT EXISTS false: a subquery with no FROM, WHERE,
    HAVING or LIMIT returns exactly one row."""
    if type(node) is not dict or len(node) != 1:
        return None
    key, body = _unwrap(node)
    if key == "BoolExpr" and body.get("boolop") == "NOT_EXPR" and body.get("args"):
        inner = constant_sublink(body["args"][0])
        return None if inner is None else (FALSE if inner == TRUE else TRUE if inner == FALSE else None)
    if key != "SubLink" or body.get("subLinkType") not in ("EXISTS_SUBLINK", "EXPR_SUBLINK"):
        return None
    sub = (body.get("subselect") or {}).get("SelectStmt")
    if type(sub) is not dict or sub.get("op") not in (None, "SETOP_NONE"):
        return None
    if any(sub.get(k) is not None for k in ("fromClause", "whereClause", "havingClause", "limitCount",
                                            "valuesLists", "groupClause", "limitOffset")):
        return None
    if body["subLinkType"] == "EXISTS_SUBLINK":
        return TRUE
    targets = sub.get("targetList") or []   # (SELECT true): the value of its one constant
    if len(targets) != 1:
        return None
    try:
        value = _ConstEval.truthy((targets[0].get("ResTarget") or {}).get("val"))
    except (_NotConst, ValueError, TypeError, ArithmeticError):
        return None
    return of_value(value)


# --- checks the catalog decides (WHERE_CHECKS["catalog"]) --------------------------------------
# An atom names a fact about a target column that, if the catalog confirms it, makes the
# comparison hold for every row: ("not_null", col) for `col IS NOT NULL` (and ("null", col) for
# `col IS NULL`, false for every row then), ("boolean", col) for
# `col IN (true, false)`, ("above", col, n) / ("below", col, n) for `col > n` / `col < n` with n
# past the int4 range, true of every smallint and integer column.

_INT4_MIN, _INT4_MAX = -2147483648, 2147483647


def catalog_atom(truth, key: str, b: dict) -> tuple | None:
    """The catalog atom a comparison of a target column stands for, or None."""
    if key == "NullTest":
        column = _row_column(truth, b.get("arg"))
        if column:   # IS NOT NULL of a NOT NULL column: true; IS NULL: false (for NOT (x IS NULL))
            return ("not_null", column) if b.get("nulltesttype") == "IS_NOT_NULL" else ("null", column)
        return None
    if key != "A_Expr":
        return None
    op = (_strings(b.get("name")) or [""])[-1]
    left, right = b.get("lexpr"), b.get("rexpr")
    if b.get("kind") == "AEXPR_IN" and op == "=":
        column = _row_column(truth, left)
        items = right.get("List", {}).get("items") if type(right) is dict else right
        if column and isinstance(items, list) and len(items) == 2:
            values = set()
            for item in items:
                c = (item or {}).get("A_Const") if type(item) is dict else None
                _range_kind_read()   # plain texts hold no `IN (true` (keys.special_constants)
                if c is None or "boolval" not in c:
                    return None
                _reads[0] += 1
                values.add(bool(c["boolval"].get("boolval", False)))
            return ("boolean", column) if values == {True, False} else None
        return None
    if b.get("kind") != "AEXPR_OP" or op not in _FLIP:
        return None
    for col, const, o in ((left, right, op), (right, left, _FLIP[op])):
        column = _row_column(truth, col)
        value = const.get("A_Const") if type(const) is dict else None
        if column is None or value is None:
            continue
        _range_kind_read()
        if "fval" not in value:   # int4 constants (ival) never pass the int4 range
            return None
        _reads[0] += 1
        try:
            number = float(value["fval"].get("fval", "0"))
        except ValueError:
            return None
        if o in (">", ">=") and number < _INT4_MIN:
            return ("above", column)
        if o in ("<", "<=") and number > _INT4_MAX:
            return ("below", column)
    return None
