"""Evaluating expressions made only of constants, as PostgreSQL would (three-valued logic)."""

from __future__ import annotations

from wireproxy.policy.pgfacts.nodes import _NotConst, _const, _strings, _unwrap


def _const_string(node) -> str | None:
    """A string constant, possibly cast and concatenated with `||`: 'DROP ' || 'TABLE t'."""
    try:
        value = _ConstEval.value(node)
    except (_NotConst, ValueError, TypeError, ArithmeticError):
        return None
    return value if isinstance(value, str) else None


def _is_bool_const(node) -> bool:
    try:
        return isinstance(_const(node), bool)
    except _NotConst:
        return False



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
            return _ConstEval.cast(b)
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
    def cast(b: dict) -> object:
        """A constant cast to a type we know: bool, the integers, the floats, the text types."""
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

