"""One three-valued logic for both extractors (policy/truth.py)."""

import pytest

from wireproxy.policy.facts import extract
from wireproxy.policy.truth import (
    CONST, FALSE, NULL, ROW, TRUE, every_row, of_value, t_and, t_is, t_not, t_or)


def test_kleene_tables():
    assert t_and(FALSE, NULL) == FALSE and t_and(TRUE, NULL) == NULL and t_and(TRUE, TRUE) == TRUE
    assert t_or(TRUE, NULL) == TRUE and t_or(FALSE, NULL) == NULL and t_or(FALSE, FALSE) == FALSE
    assert t_not(NULL) == NULL and t_not(TRUE) == FALSE and t_not(CONST) == CONST and t_not(ROW) == ROW
    assert of_value(None) == NULL and of_value(True) == TRUE and of_value(False) == FALSE
    assert t_is(NULL, "is_unknown") == TRUE and t_is(NULL, "is_not_true") == TRUE
    assert t_is(TRUE, "is_not_unknown") == TRUE and t_is(FALSE, "is_true") == FALSE


def test_every_row():
    assert every_row(TRUE) and every_row(CONST)
    assert not every_row(FALSE) and not every_row(NULL) and not every_row(ROW)
    assert every_row(t_or(ROW, CONST))            # `id = 5 OR $1`: $1 may be true
    assert not every_row(t_and(CONST, ROW))       # `$1 AND id = 5`
    assert every_row(t_not(t_and(CONST, ROW)))    # `NOT ($1 AND id = 5)`: $1 may be false


# Where the old twins went wrong: pgfacts folded NULL into FALSE (so NOT (NULL AND x) looked
# like a tautology), sqlglotfacts did not know IS NOT TRUE (so it missed a real one).
CASES = [
    ("DELETE FROM t WHERE NOT (NULL AND id = 1)", False),     # deletes only rows with id <> 1
    ("DELETE FROM t WHERE NOT (id = 1 AND NULL)", False),
    ("DELETE FROM t WHERE (NULL AND id = 1) IS NOT TRUE", True),   # every row
    ("DELETE FROM t WHERE NOT (NULL::boolean AND id = 1)", False),
    ("DELETE FROM t WHERE NULL OR id = id", True),
    ("DELETE FROM t WHERE NOT NULL", False),
    ("DELETE FROM t WHERE id = 1 OR NULL", False),
]


@pytest.mark.parametrize("sql,unbounded", CASES)
@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_both_extractors_agree_under_three_valued_logic(sql, unbounded, dialect):
    (st,) = extract(sql, dialect).statements
    assert st.unbounded is unbounded
