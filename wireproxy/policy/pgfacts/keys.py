"""Cache keys: the parse tree's shape, and PostgreSQL's own normalization of a text."""

from __future__ import annotations

import re

from pglast.parser import normalize

from wireproxy.policy.facttypes import QueryFacts


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


# Constants a value-range or catalog check fires on: numbers past int4 or with a fraction or
# exponent (PostgreSQL's fval), the empty string, infinity, a list of booleans. Conservative:
# '' also matches 'it''s'.
_SPECIAL_NUMBER = re.compile(r"[0-9](?:[0-9]{9}|[.eE])|\.[0-9]")
_BOOLEAN_LIST = re.compile(r"\bin\s*\(\s*(?:true|false)\b")


def special_constants(sql: str) -> bool:
    if "''" in sql or _SPECIAL_NUMBER.search(sql) is not None:
        return True
    low = sql.lower()
    return "infinity" in low or (("true" in low or "false" in low) and _BOOLEAN_LIST.search(low) is not None)


def normalized_key(sql: str) -> str | None:
    """PostgreSQL's own normalization of `sql` (libpg_query, as pg_stat_statements does it):
    each literal replaced by $n, without building a tree. None when it cannot be used: the text
    holds a `$` (a written parameter could share a form with a literal), or does not parse.
    (Facts that are `range_sensitive` are used under it only for texts without special
    constants: facts.extract checks.)"""
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

