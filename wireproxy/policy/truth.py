"""What a condition selects, in SQL's three-valued logic: the one table both extractors use.

An outcome says two things about a WHERE (a MERGE ON, a policy's USING...) over the rows of a
table: which values it can take on some row (`possible`), and which values it can take on
every row at once in some run (`uniform`: the same value for all rows, chosen by constants,
parameters or functions that do not look at the row). Values are SQL's three: true, false and
NULL. The five named outcomes:

    TRUE   true for every row               `id = id`, `x OR true`
    FALSE  false for every row              `id <> id`, `false`
    NULL   NULL for every row               `NULL`, `NULL AND true`: selects no row, yet
                                            unlike FALSE its negation selects none either
    CONST  the same for every row, unknown  `$1`, `random() < 2`, `(SELECT true)`
    ROW    depends on the row               `id = 5`

Connectives combine outcomes value by value with Kleene's tables (as PostgreSQL does: FALSE
AND NULL is FALSE, TRUE OR NULL is TRUE, NOT NULL is NULL), so derived outcomes are exact
where it matters: `(NULL AND id = 1) IS NOT TRUE` holds for every row, `NOT (NULL AND id = 1)`
does not (it selects only the rows with id <> 1). A condition reaches every row (`every_row`)
when it can be true for all of them at once: TRUE, CONST, `id = 5 OR $1`.

(Before this module pgfacts and sqlglotfacts each had their own `_and`, folding NULL into
FALSE, and only one knew `IS NOT TRUE`: they judged both statements above differently.)
"""

from __future__ import annotations

_T, _F, _N = 1, 2, 4
_VALUES = (_T, _F, _N)
_ALL = _T | _F | _N


def _outcome(possible: int, uniform: int) -> int:
    if possible in _VALUES:   # one value on every row is a uniform value
        uniform |= possible
    return possible | (uniform << 3)


TRUE = _outcome(_T, _T)
FALSE = _outcome(_F, _F)
NULL = _outcome(_N, _N)
CONST = _outcome(_ALL, _ALL)
ROW = _outcome(_ALL, 0)


def every_row(outcome: int) -> bool:
    """Can the condition be true for every row at once (so it bounds nothing)?"""
    return bool((outcome >> 3) & _T)


def of_value(value: object) -> int:
    """The outcome of a constant: True, False or None (NULL)."""
    if value is None:
        return NULL
    return TRUE if value else FALSE


def _bits(mask: int):
    return [v for v in _VALUES if mask & v]


def _unary(outcome: int, table: dict[int, int]) -> int:
    possible, uniform = outcome & _ALL, outcome >> 3
    new_possible = 0
    for v in _bits(possible):
        new_possible |= table[v]
    new_uniform = 0
    for v in _bits(uniform):
        new_uniform |= table[v]
    return _outcome(new_possible, new_uniform)


def _binary(a: int, b: int, table: dict[tuple[int, int], int]) -> int:
    pa, ua, pb, ub = a & _ALL, a >> 3, b & _ALL, b >> 3
    possible = 0
    for x in _bits(pa):
        for y in _bits(pb):
            possible |= table[x, y]
    uniform = 0
    for x in _bits(ua):
        for y in _bits(ub):
            uniform |= table[x, y]
        row_values = 0             # a uniform x against whatever b does row by row
        for y in _bits(pb):
            row_values |= table[x, y]
        if row_values in _VALUES:
            uniform |= row_values
    for y in _bits(ub):
        row_values = 0
        for x in _bits(pa):
            row_values |= table[x, y]
        if row_values in _VALUES:
            uniform |= row_values
    return _outcome(possible, uniform)


def _kleene(op) -> dict[tuple[int, int], int]:
    as_py = {_T: True, _F: False, _N: None}
    back = {True: _T, False: _F, None: _N}
    return {(x, y): back[op(as_py[x], as_py[y])] for x in _VALUES for y in _VALUES}


def _and3(x, y):
    if x is False or y is False:
        return False
    return None if x is None or y is None else True


def _or3(x, y):
    if x is True or y is True:
        return True
    return None if x is None or y is None else False


_AND = _kleene(_and3)
_OR = _kleene(_or3)
_NOT = {_T: _F, _F: _T, _N: _N}


def t_not(outcome: int) -> int:
    return _unary(outcome, _NOT)


def t_and(*outcomes: int) -> int:
    result = TRUE
    for o in outcomes:
        result = _binary(result, o, _AND)
    return result


def t_or(*outcomes: int) -> int:
    result = FALSE
    for o in outcomes:
        result = _binary(result, o, _OR)
    return result


# x IS [NOT] TRUE / FALSE / UNKNOWN: never NULL themselves.
_IS = {
    "is_true": {_T: _T, _F: _F, _N: _F},
    "is_not_true": {_T: _F, _F: _T, _N: _T},
    "is_false": {_T: _F, _F: _T, _N: _F},
    "is_not_false": {_T: _T, _F: _F, _N: _T},
    "is_unknown": {_T: _F, _F: _F, _N: _T},
    "is_not_unknown": {_T: _T, _F: _T, _N: _F},
}


def t_is(outcome: int, test: str) -> int:
    """`x IS <test>`, test one of is_true, is_not_true, is_false, is_not_false, is_unknown,
    is_not_unknown (PostgreSQL's BooleanTest names, lower-cased)."""
    table = _IS.get(test)
    return ROW if table is None else _unary(outcome, table)
