"""Strict masks: a strict column may be selected as it is and nothing else."""

import pytest

from wireproxy.policy.strict import StrictColumns

STRICT = StrictColumns([("mails", "users.email"), ("cards", "card_*")])


@pytest.mark.parametrize("sql", [
    "select email from users",
    "select email as e, id from users u",
    "select * from users",
    "select u.* from users u",
    "select x from (select email as x from users) s",
    "select id from users where id = 1",
    "select card_number from payments",
    "select 'lower(email)' from users",            # a string, not an expression over the column
    "update users set name = 'x' where id = 1",
])
def test_plain_reads_pass(sql):
    assert STRICT.violation(sql) is None


@pytest.mark.parametrize("sql,used", [
    ("select lower(email) from users", ("mails", "email")),
    ("select email || '' from users", ("mails", "email")),
    ("select concat(card_number) from payments", ("cards", "card_number")),
    ("select id from users where email like 'a%'", ("mails", "email")),
    ("select id from users order by email", ("mails", "email")),
    ("select json_agg(email) from users", ("mails", "email")),
    ("select (select email from users limit 1)", ("mails", "email")),
    ("select name from t union select email from users", ("mails", "email")),
    ("with c as (select email as x from users) select x from c", ("mails", "email")),
    ("insert into t select email from users", ("mails", "email")),
    ("select email into t2 from users", ("mails", "email")),
    ("create table t3 as select email from users", ("mails", "email")),
    ("copy (select email from users) to stdout", ("mails", "email")),
    ("select row_to_json(u) from users u", ("mails", "a whole row")),
    ("select u from users u", ("mails", "a whole row")),
    ("select to_jsonb(u.*) from users u", ("mails", "a whole row")),
    ('select LOWER("EMAIL") from users', ("mails", "email")),   # names compared as masks are: any case
    ('select LOWER(EMAIL) from users', ("mails", "email")),
    ("select 1; select lower(email) from users", ("mails", "email")),
])
def test_uses_inside_expressions_are_found(sql, used):
    assert STRICT.violation(sql) == used


def test_unparseable_sql_is_left_to_the_policy_and_cached():
    assert STRICT.violation("selec lower(email)") is None
    assert STRICT.violation("selec lower(email)") is None


def test_no_strict_rules_is_falsy():
    assert not StrictColumns([])
