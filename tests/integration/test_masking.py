"""Masking and volume limits end to end: `[[mask]]` rules and `max_*` rule keys through a real
wireproxy in front of a real PostgreSQL, with psql (simple protocol), psycopg (text, binary,
prepared) and asyncpg (binary, statements described once and executed many times).

The tests check that a direct connection still sees the originals: masking happens on the way
out, never in the data.

Tables are created once for the module in their own schema (`masking`), and the proxies are
started once, in parallel: one per rule file.

Tests marked xfail(strict=True) show bugs found while writing this file; their reasons say what
is wrong and where (see also the report that came with this file).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import asyncpg
import psycopg
import pytest

from protocols.postgres import (Bind, CommandComplete, DataRow, ErrorResponse, Parse, Query,
                                ReadyForQuery, RowDescription)
from protocols.postgres.messages import Describe, Execute, Sync
from proxyprocess import ProxyProcess
from rawclient import RawClient

SCHEMA = "masking"

# (id, name, email, card_number, notes, pin)
USERS = [
    (1, "alice", "alice@example.com", "4111111111111111",
     "paid with card 4111 1111 1111 1111 yesterday", 1234),
    (2, "bob", "bob@example.org", "5555555555554444",
     "card 5555-5555-5555-4444, mail bob@example.org", 4321),
    (3, "carol", "carol@example.com", "4012888888881881", "no secrets here", 5678),
]
# (id, user_id, email, card_number, amount)
ORDERS = [
    (1, 1, "alice@example.com", "4111111111111111", 10),
    (2, 1, "alice@example.com", "4111111111111111", 20),
    (3, 2, "bob@example.org", "5555555555554444", 30),
    (4, 3, "carol@example.com", "4012888888881881", 40),
    (5, 1, "alice@example.com", "4111111111111111", 50),
]
EMAILS = [u[2] for u in USERS]
CARDS = [u[3] for u in USERS]
SECRETS = EMAILS + CARDS + ["4111 1111 1111 1111", "5555-5555-5555-4444"]
HASH = re.compile(r"^[0-9a-f]{16}$")

SETUP_SQL = f"""
drop schema if exists {SCHEMA} cascade;
create schema {SCHEMA};
create table {SCHEMA}.users (
    id int primary key, name text not null, email text unique, card_number text, notes text,
    pin int);
create table {SCHEMA}.orders (
    id int primary key, user_id int references {SCHEMA}.users, email text, card_number text,
    amount int);
insert into {SCHEMA}.users values
""" + ",\n".join(
    f"({i}, '{n}', '{e}', '{c}', '{t}', {p})" for i, n, e, c, t, p in USERS) + f""";
insert into {SCHEMA}.orders values
""" + ",\n".join(f"({i}, {u}, '{e}', '{c}', {a})" for i, u, e, c, a in ORDERS) + f""";
-- a million rows, generated and streamed (a set-returning function in the select list is
-- evaluated row by row; in FROM it would be materialised before the first row goes out)
create view {SCHEMA}.million as
    select g, 'row ' || g || repeat('.', 60) as label
    from (select generate_series(1, 1000000) as g) s;
-- the same million, counting on the server the rows it makes (a sequence: a cancelled query
-- keeps its count), and past the first 2,000 slowed to about 10 s in all: a cut that did not
-- stop the query upstream shows as a count of a million
create sequence {SCHEMA}.produced;
create function {SCHEMA}.produce(g int) returns bigint language plpgsql volatile as $$
begin
    if g > 2000 and g % 100 = 0 then perform pg_sleep(0.001); end if;
    return nextval('{SCHEMA}.produced');
end $$;
create view {SCHEMA}.counted as select g, label, {SCHEMA}.produce(g) as n from {SCHEMA}.million;
create view {SCHEMA}.wide as
    select g, repeat('x', 1000) as pad from (select generate_series(1, 1000000) as g) s;
create view {SCHEMA}.stream as
    select g, repeat('y', 100) as pad from (select generate_series(1, 1000000) as g) s;
grant usage on schema {SCHEMA} to scramuser, md5user;
grant select on all tables in schema {SCHEMA} to scramuser, md5user;
"""

STYLES = ("partial", "redact", "hash", "null")


def column_rules(style: str) -> str:
    return f"""
mode = "enforce"

[[mask]]
id = "mask-email"
columns = ["email"]                  # by name, any table
style = "{style}"

[[mask]]
id = "mask-card"
columns = ["users.card_number"]      # users.card_number only, not orders.card_number
style = "{style}"

[[mask]]
id = "mask-pin"
columns = ["{SCHEMA}.users.pin"]     # an int column: NULL in every format
style = "{style}"
"""


def content_rules(style: str) -> str:
    return f"""
mode = "enforce"

[[mask]]
id = "mask-content"
detectors = ["credit_card", "email"]  # every text column of every result
style = "{style}"
"""


SCOPED_RULES = """
[[mask]]
id = "only-postgres"
columns = ["email"]
users = ["postgres"]
style = "redact"

[[mask]]
id = "all-but-postgres"
columns = ["card_number"]
exempt_users = ["postgres"]
style = "redact"
"""

LIMIT_RULES = f"""
[[rule]]
id = "cap-rows"
action = "block"
statements = ["select"]
tables = ["{SCHEMA}.million", "{SCHEMA}.counted"]
max_rows = 1000

[[rule]]
id = "cap-bytes"
action = "block"
statements = ["select"]
tables = ["{SCHEMA}.wide"]
max_bytes = 100_000

[[rule]]
id = "cap-session"
action = "block"
statements = ["select"]
tables = ["{SCHEMA}.stream"]
max_session_bytes = 250_000

[[rule]]
id = "cap-copy"
action = "block"
statements = ["copy_to"]
max_rows = 1000
"""

# globs that match nothing any test selects: the masker is in force, every plan is None
PARITY_RULES = """
[[mask]]
id = "nothing-here"
columns = ["no_such_column_xyz", "no_such_table.card_number", "*.nope_*"]
style = "redact"
"""

STRICT_RULES = """
[[mask]]
id = "strict-card"
columns = ["card_number"]
style = "redact"
strict = true                     # block queries that use card_number inside an expression

[[mask]]
id = "refuse-pin"
columns = ["pin"]
style = "redact"
binary = "refuse"                 # a masked int column asked for in binary: refuse the statement
"""


# ------------------------------------------------------------------------------ fixtures --

@pytest.fixture(scope="module")
def data(pg):
    pg.psql(SETUP_SQL)
    yield
    pg.psql(f"drop schema if exists {SCHEMA} cascade")


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("masking-rules")


@pytest.fixture(scope="module")
def proxies(pg, data, rules_dir):
    """Every proxy this module needs, started together (each takes about a second alone)."""
    files = {f"col-{s}": column_rules(s) for s in STYLES}
    files.update({f"content-{s}": content_rules(s) for s in STYLES})
    files.update({"scoped": SCOPED_RULES, "limits": LIMIT_RULES, "parity": PARITY_RULES,
                  "strict": STRICT_RULES})
    started: dict[str, ProxyProcess] = {}
    try:
        for name, text in files.items():
            path = rules_dir / f"{name}.toml"
            path.write_text(text)
            extra = ["--key-file", str(rules_dir / "keys" / "wireproxy.key")] if name == "col-hash" else []
            started[name] = ProxyProcess(["serve", "--listen", "127.0.0.1:0", "--upstream",
                                          f"127.0.0.1:{pg.port}", "--rules", str(path), *extra])
        for proxy in started.values():
            proxy.wait_for("ready", timeout=60)
        yield started
    finally:
        for proxy in started.values():
            proxy.stop()


# ------------------------------------------------------------------------------- clients --
# Every client returns rows as tuples of str-or-None, so their answers compare directly.

CLIENTS = ("psql", "psycopg-text", "psycopg-prepared", "psycopg-binary", "asyncpg")


def _norm(rows) -> list[tuple]:
    return [tuple(None if v is None else str(v) for v in row) for row in rows]


def psql(pg, port: int, sql: str, *, user: str | None = None, password: str | None = None,
         check: bool = True, script: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if password:
        env["PGPASSWORD"] = password
    args = ["psql", "-X", "-A", "-t", "-P", "null=<NULL>", "-d", pg.dsn(port=port, user=user)]
    if script:
        return subprocess.run(args, input=sql, capture_output=True, text=True, env=env, timeout=60)
    args += ["-v", "ON_ERROR_STOP=1", "-c", sql]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=check)


def run_asyncpg(url: str, fn):
    async def main():
        conn = await asyncpg.connect(url)
        try:
            return await fn(conn)
        finally:
            await conn.close()
    return asyncio.run(main())


def fetch(pg, client: str, port: int, sql: str, *, user: str | None = None,
          password: str | None = None) -> list[tuple]:
    if client == "psql":
        out = psql(pg, port, sql, user=user, password=password).stdout
        return [tuple(None if v == "<NULL>" else v for v in line.split("|"))
                for line in out.splitlines() if line]
    if client == "asyncpg":
        async def go(conn):
            stmt = await conn.prepare(sql)          # Parse + Describe once ...
            await stmt.fetch()
            return await stmt.fetch()               # ... then Bind + Execute only, binary
        return _norm(run_asyncpg(pg.url(port=port, user=user, password=password), go))
    with psycopg.connect(pg.dsn(port=port, user=user, password=password), autocommit=True) as conn:
        if client == "psycopg-text":
            return _norm(conn.execute(sql, prepare=False).fetchall())
        if client == "psycopg-prepared":
            conn.execute(sql, prepare=True).fetchall()
            return _norm(conn.execute(sql, prepare=True).fetchall())
        if client == "psycopg-binary":
            with conn.cursor(binary=True) as cur:
                return _norm(cur.execute(sql).fetchall())
    raise ValueError(client)


def direct(pg, sql: str) -> list[tuple]:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        return _norm(conn.execute(sql).fetchall())


def assert_no_secret(result) -> None:
    text = repr(result)
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"leaked {leaked} in {text}"


# ------------------------------------------------------------- expected masked values --

def whole(style: str, value: str) -> str | None:
    """What a value masked whole by a column rule looks like (hash: checked separately)."""
    if style == "null":
        return None
    if style == "redact":
        return "****"
    if style == "partial":
        return "****@" + value.split("@")[1] if "@" in value else "****" + value[-4:]
    raise ValueError(style)


def matches(style: str, got, expected_original: str) -> bool:
    if style == "hash":
        return got is not None and HASH.match(got) is not None and got != expected_original
    return got == whole(style, expected_original)


# In-text replacements by the content detectors, per style (hash: the 16 hex characters).
H = "[0-9a-f]{16}"
CONTENT_NOTES = {
    "partial": ["paid with card ****1111 yesterday", "card ****4444, mail ****@example.org",
                "no secrets here"],
    "redact": ["paid with card **** yesterday", "card ****, mail ****", "no secrets here"],
    "null": [None, None, "no secrets here"],     # a null-style hit makes the whole value NULL
    "hash": [re.compile(f"^paid with card {H} yesterday$"), re.compile(f"^card {H}, mail {H}$"),
             "no secrets here"],
}


def _same(expected, got) -> bool:
    if isinstance(expected, re.Pattern):
        return got is not None and expected.match(got) is not None
    return expected == got


# =================================================== 1. name, table.column, content rules --

USERS_SQL = f"select id, email, card_number, pin from {SCHEMA}.users order by id"
ORDERS_SQL = f"select id, email, card_number from {SCHEMA}.orders order by id"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("style", STYLES)
def test_column_rules_by_name_and_table_column(pg, proxies, style, client):
    port = proxies[f"col-{style}"].port
    users = fetch(pg, client, port, USERS_SQL)
    assert [r[0] for r in users] == ["1", "2", "3"]
    for row, (_, _, email, card, _, _) in zip(users, USERS):
        assert matches(style, row[1], email), row           # "email": by name
        assert matches(style, row[2], card), row            # "users.card_number"
        assert row[3] is None, row                          # int column: NULL in text and binary
    if style == "partial":
        assert [r[1] for r in users] == ["****@example.com", "****@example.org", "****@example.com"]
        assert [r[2] for r in users] == ["****1111", "****4444", "****1881"]
    if style == "hash":
        assert len({r[1] for r in users}) == 3 and len({r[2] for r in users}) == 3

    orders = fetch(pg, client, port, ORDERS_SQL)
    for row, (_, _, email, card, _) in zip(orders, ORDERS):
        assert matches(style, row[1], email), row           # "email" of any table
        assert row[2] == card, row                          # orders.card_number is not users'
    # the data itself is untouched
    assert direct(pg, USERS_SQL) == _norm([(i, e, c, p) for i, _, e, c, _, p in USERS])
    assert direct(pg, ORDERS_SQL) == _norm([(i, e, c) for i, _, e, c, _ in ORDERS])


def test_table_column_rule_follows_the_column_through_an_alias(pg, proxies):
    # users.card_number is resolved by table OID + attribute number, so an alias does not hide it
    port = proxies["col-redact"].port
    for client in ("psql", "psycopg-binary", "asyncpg"):
        got = fetch(pg, client, port, f"select u.card_number as c from {SCHEMA}.users u order by id")
        assert got == [("****",)] * 3, client


def test_name_rule_follows_the_column_through_an_alias(pg, proxies):
    # columns = ["email"]: `select email as contact` still carries the table column in
    # RowDescription, so renaming it must not unmask it
    port = proxies["col-redact"].port
    for client in ("psql", "psycopg-text", "psycopg-binary", "asyncpg"):
        got = fetch(pg, client, port, f"select u.email as contact, o.email as buyer from {SCHEMA}.users u"
                                      f" join {SCHEMA}.orders o on o.user_id = u.id where o.id = 3")
        assert got == [("****", "****")], client


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("style", STYLES)
def test_content_rules_over_every_text_column(pg, proxies, style, client):
    port = proxies[f"content-{style}"].port
    got = fetch(pg, client, port, f"select id, notes, email, card_number from {SCHEMA}.users order by id")
    for row, expected, (_, _, email, card, _, _) in zip(got, CONTENT_NOTES[style], USERS):
        assert _same(expected, row[1]), (style, row)        # a card and an email inside prose
        assert matches(style, row[2], email), row           # a whole value found by content
        assert matches(style, row[3], card), row
    assert_no_secret(got)
    # orders.card_number too: content detectors look at every text column
    orders = fetch(pg, client, port, ORDERS_SQL)
    assert all(matches(style, r[2], card) for r, (_, _, _, card, _) in zip(orders, ORDERS))
    assert direct(pg, f"select notes from {SCHEMA}.users order by id") == [(u[4],) for u in USERS]


# ================================================================ hash: deterministic --

def _hashes(pg, client: str, port: int) -> dict[str, str]:
    """original email -> its hash, through the proxy"""
    rows = fetch(pg, client, port, f"select id, email from {SCHEMA}.users order by id")
    return {USERS[int(i) - 1][2]: h for i, h in rows}


def test_hash_is_deterministic_across_sessions_queries_and_formats(pg, proxies):
    port = proxies["col-hash"].port
    first = _hashes(pg, "psycopg-text", port)
    assert all(HASH.match(h) for h in first.values())
    assert len(set(first.values())) == 3                     # different inputs, different outputs
    for client in CLIENTS:                                   # new sessions, text and binary
        assert _hashes(pg, client, port) == first, client
    with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:   # one session, two queries
        q = f"select email from {SCHEMA}.users where id = 2"
        assert conn.execute(q).fetchone() == conn.execute(q).fetchone() == (first["bob@example.org"],)


def test_hash_keeps_joins_and_group_by_working(pg, proxies):
    port = proxies["col-hash"].port
    by_email = _hashes(pg, "psycopg-text", port)
    user_of = {by_email[e]: uid for uid, _, e, _, _, _ in USERS}
    # a client-side join of two results on the masked value finds the right user for every order
    orders = fetch(pg, "asyncpg", port, f"select id, email from {SCHEMA}.orders order by id")
    assert [user_of[h] for _, h in orders] == [o[1] for o in ORDERS]
    # GROUP BY on the column: one group per original value, with the original counts
    grouped = fetch(pg, "psycopg-binary", port,
                    f"select email, count(*) from {SCHEMA}.orders group by email")
    assert {h: int(n) for h, n in grouped} == {by_email["alice@example.com"]: 3,
                                               by_email["bob@example.org"]: 1,
                                               by_email["carol@example.com"]: 1}
    # two masked columns of one row that hold the same value agree
    pairs = fetch(pg, "psql", port, f"select u.email, o.email from {SCHEMA}.users u "
                                    f"join {SCHEMA}.orders o on o.user_id = u.id")
    assert len(pairs) == 5 and all(a == b for a, b in pairs)


def test_hash_key_file_survives_restart_and_other_keys_differ(pg, proxies, start_proxy, rules_dir, tmp_path):
    before = _hashes(pg, "psycopg-text", proxies["col-hash"].port)
    rules = rules_dir / "col-hash.toml"
    again = start_proxy("--key-file", str(rules_dir / "keys" / "wireproxy.key"), rules=rules)
    assert _hashes(pg, "asyncpg", again.port) == before
    other = start_proxy("--key-file", str(tmp_path / "other.key"), rules=rules)
    assert set(_hashes(pg, "asyncpg", other.port).values()).isdisjoint(before.values())


def test_content_hash_groups_equal_values(pg, proxies):
    port = proxies["content-hash"].port
    rows = fetch(pg, "asyncpg", port, f"select user_id, card_number from {SCHEMA}.orders order by id")
    by_user: dict[str, set] = {}
    for uid, h in rows:
        assert HASH.match(h), h
        by_user.setdefault(uid, set()).add(h)
    assert all(len(hs) == 1 for hs in by_user.values())     # alice's three orders: one value
    assert len({next(iter(hs)) for hs in by_user.values()}) == 3


# ======================================================================= 2. binary format --

def test_binary_text_masked_in_place_and_int_column_null(pg, proxies):
    port = proxies["col-partial"].port
    sql = f"select email, pin, name from {SCHEMA}.users where id = 1"
    with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:
        with conn.cursor(binary=True) as cur:
            cur.execute(sql)
            assert [d.type_code for d in cur.description] == [25, 23, 25]
            assert cur.fetchall() == [("****@example.com", None, "alice")]
        assert conn.execute(sql).fetchall() == [("****@example.com", None, "alice")]
        assert conn.execute(sql, prepare=True).fetchall() == [("****@example.com", None, "alice")]

    async def go(conn):
        stmt = await conn.prepare(f"select email, pin, name from {SCHEMA}.users where id = $1")
        return [tuple(await stmt.fetchrow(i)) for i in (1, 2, 1)]
    assert run_asyncpg(pg.url(port=port), go) == [("****@example.com", None, "alice"),
                                                  ("****@example.org", None, "bob"),
                                                  ("****@example.com", None, "alice")]
    assert direct(pg, sql) == [("alice@example.com", "1234", "alice")]


def test_binary_refuse_refuses_the_statement(pg, proxies):
    port = proxies["strict"].port
    sql = f"select id, pin from {SCHEMA}.users order by id"
    with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:
        # text format: the int column is masked to NULL, nothing is refused
        assert conn.execute(sql).fetchall() == [(1, None), (2, None), (3, None)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refuse-pin"):
            conn.cursor(binary=True).execute(sql).fetchall()
        assert conn.execute("select 'next works'").fetchone() == ("next works",)

    async def go(conn):                     # asyncpg asks for binary: refused, session goes on
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="refuse-pin"):
            await conn.fetch(sql)
        return await conn.fetchval("select 'next works'")
    assert run_asyncpg(pg.url(port=port), go) == "next works"


# ======================================================================= 3. COPY TO STDOUT --

COPY_SQL = f"copy (select id, email, card_number, notes from {SCHEMA}.users order by id) to stdout"


@pytest.mark.parametrize("client", ["psql", "psycopg"])
def test_copy_to_stdout_masked(pg, proxies, client):
    port = proxies["content-partial"].port
    if client == "psql":
        out = psql(pg, port, "\\copy (select id, email, card_number, notes from "
                             f"{SCHEMA}.users order by id) to stdout").stdout
    else:
        with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:
            with conn.cursor().copy(COPY_SQL) as copy:
                out = b"".join(bytes(chunk) for chunk in copy).decode()
    assert_no_secret(out)
    assert out.splitlines() == [
        "1\t****@example.com\t****1111\tpaid with card ****1111 yesterday",
        "2\t****@example.org\t****4444\tcard ****4444, mail ****@example.org",
        "3\t****@example.com\t****1881\tno secrets here",
    ]
    # straight to PostgreSQL: the originals
    assert "alice@example.com\t4111111111111111" in psql(pg, pg.port, COPY_SQL).stdout


def test_copy_csv_masked(pg, proxies):
    port = proxies["content-partial"].port
    with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:
        with conn.cursor().copy(f"copy (select id, card_number, pin from {SCHEMA}.users order by id)"
                                " to stdout with (format csv)") as copy:
            out = b"".join(bytes(chunk) for chunk in copy).decode()
    assert_no_secret(out)


# ===================================================== 4. errors, notices, notifications --

def test_unique_violation_detail_masked_by_content_detector(pg, proxies):
    port = proxies["content-redact"].port
    dup = f"insert into {SCHEMA}.users (id, name, email) values (99, 'eve', 'alice@example.com')"
    with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation) as info:
            conn.execute(dup)
        assert info.value.diag.message_detail == "Key (email)=(****) already exists."
        assert_no_secret((str(info.value), info.value.diag.message_detail))
        # a NOT NULL violation's "Failing row contains (...)" carries the whole row
        with pytest.raises(psycopg.errors.NotNullViolation) as info:
            conn.execute(f"insert into {SCHEMA}.users values (98, null, 'zed@example.com', "
                         "'4111111111111111', 'x', 1)")
        detail = info.value.diag.message_detail
        assert detail.startswith("Failing row contains (98, null, ****, ****")
        assert "zed@example.com" not in detail
        assert conn.execute("select 'usable'").fetchone() == ("usable",)
    # simple protocol, psql printing the detail
    run = psql(pg, port, "\\set VERBOSITY verbose\n" + dup + ";\nselect 'still here';\n", script=True)
    assert "23505" in run.stderr and "Key (email)=(****) already exists." in run.stderr
    assert_no_secret(run.stderr)
    assert "still here" in run.stdout
    # straight to PostgreSQL the detail names the email
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation, match="alice@example.com"):
            conn.execute(dup)


def test_unique_violation_detail_masked_by_column_rule(pg, proxies):
    port = proxies["col-partial"].port
    with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation) as info:
            conn.execute(f"insert into {SCHEMA}.users (id, name, email) values (%s, 'eve', %s)",
                         (99, "bob@example.org"))
    assert info.value.diag.message_detail == "Key (email)=(****@example.org) already exists."


def test_notice_and_notification_masked(pg, proxies):
    port = proxies["content-redact"].port
    with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("do $$ begin raise notice 'mail %', 'alice@example.com'; end $$")
        conn.execute("listen masking_ch")
        conn.execute("select pg_notify('masking_ch', 'card 4111 1111 1111 1111 of bob@example.org')")
        got = [n.payload for n in conn.notifies(timeout=5, stop_after=1)]
    assert notices == ["mail ****"]
    assert got == ["card **** of ****"]


# ============================================ 5. expression bypasses, content detectors --

BYPASSES = {
    "concat": f"select concat(card_number) from {SCHEMA}.users",
    "concat-operator": f"select email || '' from {SCHEMA}.users",
    "lower-upper": f"select lower(email), upper(email) from {SCHEMA}.users",
    "scalar-subquery": f"select (select email from {SCHEMA}.users u2 where u2.id = u.id) "
                       f"from {SCHEMA}.users u",
    "from-subquery": f"select x from (select card_number as x from {SCHEMA}.users) s",
    "cte": f"with c as (select email as x from {SCHEMA}.users) select x from c",
    "union": f"select email from {SCHEMA}.users union select card_number from {SCHEMA}.users",
    "row_to_json": f"select row_to_json(u) from {SCHEMA}.users u",
    "json_agg": f"select json_agg(email) from {SCHEMA}.users",
    "to_jsonb": f"select to_jsonb(u) from {SCHEMA}.users u",
    "jsonb_agg": f"select jsonb_agg(u) from {SCHEMA}.users u",
    "array_agg-email": f"select array_agg(email) from {SCHEMA}.users",
    "format": f"select format('%s <%s> paid with %s', name, email, card_number) from {SCHEMA}.users",
}
BYPASS_CLIENTS = ("psql", "psycopg-text", "psycopg-binary", "asyncpg")


@pytest.mark.parametrize("query", list(BYPASSES.values()), ids=list(BYPASSES))
def test_expression_bypasses_caught_by_content_detectors(pg, proxies, query):
    port = proxies["content-redact"].port
    for client in BYPASS_CLIENTS:
        got = fetch(pg, client, port, query)
        assert got, client
        assert_no_secret(got)
        assert "****" in repr(got), (client, got)
    # the same query straight to PostgreSQL returns the secrets
    assert any(s in repr(direct(pg, query)) for s in SECRETS)


@pytest.mark.parametrize("query", [f"select array_agg(card_number) from {SCHEMA}.users",
                                   f"select string_agg(card_number, ',') from {SCHEMA}.users"],
                         ids=["array_agg-text", "string_agg-comma"])
def test_card_lists_caught_by_content_detectors(pg, proxies, query):
    got = fetch(pg, "psycopg-text", proxies["content-redact"].port, query)
    assert_no_secret(got)


@pytest.mark.parametrize("query", [
    f"select card_number::numeric from {SCHEMA}.users",
    f"select reverse(card_number) as r from {SCHEMA}.users",
    f"select lower(card_number) as x from {SCHEMA}.users",
], ids=["numeric-cast", "reverse", "lower"])
def test_strict_blocks_expressions_over_masked_columns(pg, proxies, query):
    """Expressions content detectors cannot recognise (a cast to numeric, a reversal) are what
    `strict = true` is for: the statement is refused (42501) and the session goes on."""
    port = proxies["strict"].port
    with psycopg.connect(pg.dsn(port=port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="strict-card"):
            conn.execute(query).fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="strict-card"):
            psycopg.ClientCursor(conn).execute(query)          # simple protocol too
        # a plain reference is masked, not blocked
        assert conn.execute(f"select card_number from {SCHEMA}.users where id = 1").fetchall() == [("****",)]


# ============================================================== extended protocol edges --

def _raw_rows(messages) -> list:
    return [m.values for m in messages if isinstance(m, DataRow)]


def test_execute_without_describe_is_still_masked(pg, proxies):
    client = RawClient(proxies["col-redact"].port)
    try:
        client.startup()
        client.send(Parse("", f"select email from {SCHEMA}.users where id = 1").encode()
                    + Bind("", "").encode() + Execute("").encode() + Sync().encode())
        got = client.read_until("ReadyForQuery")
    finally:
        client.close()
    assert _raw_rows(got) == [(b"****",)]


def test_pipelined_portals_keep_their_own_plans(pg, proxies):
    client = RawClient(proxies["col-redact"].port)
    try:
        client.startup()
        client.send(Parse("s1", f"select email from {SCHEMA}.users where id = 1").encode()
                    + Parse("s2", "select 'x'::text as a").encode()
                    + Describe("S", "s1").encode() + Describe("S", "s2").encode() + Sync().encode())
        client.read_until("ReadyForQuery")
        client.send(Bind("", "s1").encode() + Execute("").encode()
                    + Bind("", "s2").encode() + Execute("").encode() + Sync().encode())
        got = client.read_until("ReadyForQuery")
    finally:
        client.close()
    assert _raw_rows(got) == [(b"****",), (b"x",)]


def test_described_once_executed_many_keeps_its_mask(pg, proxies):
    """Parse + Describe S once, then Bind/Execute without Describe, twice, text then binary."""
    client = RawClient(proxies["col-redact"].port)
    try:
        client.startup()
        client.send(Parse("s", f"select email, pin from {SCHEMA}.users where id = 1").encode()
                    + Describe("S", "s").encode() + Sync().encode())
        client.read_until("ReadyForQuery")
        client.send(Bind("", "s", result_formats=(0,)).encode() + Execute("").encode()
                    + Bind("", "s", result_formats=(1,)).encode() + Execute("").encode()
                    + Sync().encode())
        got = client.read_until("ReadyForQuery")
    finally:
        client.close()
    assert _raw_rows(got) == [(b"****", None), (b"****", None)]


# ======================================================================= 6. users scoping --

def test_users_and_exempt_users(pg, proxies):
    port = proxies["scoped"].port
    sql = f"select email, card_number from {SCHEMA}.users where id = 1"
    # postgres: "only-postgres" masks email; postgres is exempt from "all-but-postgres"
    for client in ("psql", "psycopg-binary", "asyncpg"):
        assert fetch(pg, client, port, sql) == [("****", "4111111111111111")], client
    # scramuser: the other way round
    for client in ("psql", "psycopg-text", "asyncpg"):
        assert fetch(pg, client, port, sql, user="scramuser", password="scram-secret") == [
            ("alice@example.com", "****")], client
    with psycopg.connect(pg.dsn(user="scramuser", password="scram-secret"), autocommit=True) as conn:
        assert conn.execute(sql).fetchall() == [("alice@example.com", "4111111111111111")]


# ======================================================================= 7. volume limits --

def _cancelled(proxy: ProxyProcess, after: int) -> dict:
    """The proxy told PostgreSQL to stop the cut query (a CancelRequest was sent)."""
    return proxy.wait_for("session.query_cancelled", timeout=10, after=after)


def _count_from_zero(pg) -> None:
    pg.psql(f"select setval('{SCHEMA}.produced', 1, false)")


def _rows_made(pg) -> int:
    """How many rows of masking.counted the server made since _count_from_zero."""
    last, called = pg.psql(f"select last_value, is_called from {SCHEMA}.produced").strip().split("|")
    return int(last) if called.strip() == "t" else 0


def test_max_rows_cuts_a_million_rows_and_stops_the_query_psql(pg, proxies):
    proxy = proxies["limits"]
    mark = len(proxy.events)
    _count_from_zero(pg)
    script = (f"\\set VERBOSITY verbose\nselect * from {SCHEMA}.counted;\nselect 'still here';\n")
    run = psql(pg, proxy.port, script, script=True)
    assert "54000: result cut by wireproxy rule cap-rows: more than 1000 rows" in run.stderr
    assert run.stdout.splitlines() == ["still here"]       # no row of the cut result, then the next
    _cancelled(proxy, mark)                                 # the proxy cancelled the query upstream,
    assert 1000 < _rows_made(pg) < 1_000_000                # and the server stopped making rows
    assert proxy.wait_for("statement.limit", after=mark)["rule"] == "cap-rows"


@pytest.mark.parametrize("prepare", [False, True], ids=["extended", "prepared"])
def test_max_rows_cuts_a_million_rows_and_stops_the_query_psycopg(pg, proxies, prepare):
    proxy = proxies["limits"]
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        for _ in range(2):                                  # a prepared statement: twice
            mark = len(proxy.events)
            _count_from_zero(pg)
            with pytest.raises(psycopg.errors.ProgramLimitExceeded,
                               match="result cut by wireproxy rule cap-rows") as info:
                conn.execute(f"select * from {SCHEMA}.counted where g > %s", (0,), prepare=prepare)
            assert info.value.sqlstate == "54000"
            _cancelled(proxy, mark)
            assert 1000 < _rows_made(pg) < 1_000_000        # stopped upstream, not read to the end
            assert conn.execute("select %s::text", ("next works",)).fetchone() == ("next works",)
        # simple protocol on the same session
        _count_from_zero(pg)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded):
            psycopg.ClientCursor(conn).execute(f"select * from {SCHEMA}.counted")
        assert 1000 < _rows_made(pg) < 1_000_000
        assert conn.execute("select 1").fetchone() == (1,)


def test_max_rows_cuts_a_million_rows_asyncpg(pg, proxies):
    async def go(conn):
        stmt = await conn.prepare(f"select * from {SCHEMA}.million where g > $1")
        for _ in range(2):
            with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError, match="cap-rows"):
                await stmt.fetch(0)
            assert await conn.fetchval("select 'next works'") == "next works"
        return await stmt.fetch(999_000)                   # 1000 rows: under the limit
    rows = run_asyncpg(pg.url(port=proxies["limits"].port), go)
    assert [r["g"] for r in rows] == list(range(999_001, 1_000_001))


def test_rows_under_the_limit_pass_untouched(pg, proxies):
    port = proxies["limits"].port
    for sql in (f"select * from {SCHEMA}.million limit 1000",        # exactly max_rows
                f"select * from {SCHEMA}.wide limit 50"):
        for client in ("psql", "psycopg-text", "psycopg-binary", "asyncpg"):
            assert fetch(pg, client, port, sql) == direct(pg, sql), (client, sql)


def test_max_bytes_cuts_and_session_goes_on(pg, proxies):
    proxy = proxies["limits"]
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        mark = len(proxy.events)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded,
                           match="cap-bytes: more than 100000 bytes"):
            conn.execute(f"select * from {SCHEMA}.wide").fetchall()
        _cancelled(proxy, mark)
        assert conn.execute(f"select count(*) from {SCHEMA}.users").fetchone() == (3,)


def test_max_session_bytes_cuts_once_the_session_total_is_passed(pg, proxies):
    proxy = proxies["limits"]
    part = f"select * from {SCHEMA}.stream limit 1000"     # about 119 kB a time
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        assert len(conn.execute(part).fetchall()) == 1000   # ~119 kB
        assert len(conn.execute(part).fetchall()) == 1000   # ~238 kB: still under 250 kB
        mark = len(proxy.events)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded,
                           match="cap-session: more than 250000 bytes in this session"):
            conn.execute(f"select * from {SCHEMA}.stream").fetchall()
        _cancelled(proxy, mark)
        assert conn.execute("select 'next works'").fetchone() == ("next works",)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="cap-session"):
            conn.execute(f"select * from {SCHEMA}.stream limit 1").fetchall()
    # a new session starts from zero
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        assert len(conn.execute(part).fetchall()) == 1000


def test_next_statement_after_a_short_cut_is_not_cancelled(pg, proxies):
    """A cut result that ends on its own (1001 rows) before the upstream cancel lands: the
    cancel must not hit the client's next statement instead."""
    with psycopg.connect(pg.dsn(port=proxies["limits"].port), autocommit=True) as conn:
        for _ in range(5):
            with pytest.raises(psycopg.errors.ProgramLimitExceeded):
                conn.execute(f"select * from {SCHEMA}.million limit 1001").fetchall()
            conn.execute("select pg_sleep(0.2)")


def test_max_rows_holds_across_portal_chunks(pg, proxies):
    async def go(conn):
        got = 0
        async with conn.transaction():
            async for _ in conn.cursor(f"select * from {SCHEMA}.million where g <= $1", 5000,
                                       prefetch=500):
                got += 1
        return got
    with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError):
        run_asyncpg(pg.url(port=proxies["limits"].port), go)


def test_max_rows_on_copy_to(pg, proxies):
    with psycopg.connect(pg.dsn(port=proxies["limits"].port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ProgramLimitExceeded):
            with conn.cursor().copy("copy (select g from generate_series(1, 5000) g) to stdout") as copy:
                for _ in copy:
                    pass


def test_max_rows_holds_for_cursor_fetches(pg, proxies):
    script = (f"begin;\ndeclare c cursor for select * from {SCHEMA}.million;\n"
              "fetch 2500 from c;\nfetch 2500 from c;\ncommit;\n")
    run = psql(pg, proxies["limits"].port, script, script=True)
    rows = [line for line in run.stdout.splitlines() if "|row " in line]
    assert len(rows) <= 1000 and "cap-rows" in run.stderr, f"{len(rows)} rows, stderr {run.stderr!r}"


# ================================================================ 8. parity, fast path --

PARITY_QUERIES = [
    f"select * from {SCHEMA}.users order by id",
    f"select o.*, u.email as buyer, u.notes from {SCHEMA}.orders o join {SCHEMA}.users u on u.id = o.user_id order by o.id",
    f"select row_to_json(u)::text, (array_agg(card_number) over ())::text from {SCHEMA}.users u order by id",
    f"select * from {SCHEMA}.million limit 2000",
]


@pytest.mark.parametrize("client", CLIENTS)
def test_unmatched_mask_is_identical_to_direct(pg, proxies, client):
    port = proxies["parity"].port
    for sql in PARITY_QUERIES:
        assert fetch(pg, client, port, sql) == fetch(pg, client, pg.port, sql), sql


def test_unmatched_mask_sends_the_same_bytes(pg, proxies):
    def messages(port):
        client = RawClient(port)
        try:
            client.startup()
            client.send(b"".join(Query(sql).encode() for sql in PARITY_QUERIES))
            got = []
            while sum(isinstance(m, ReadyForQuery) for m in got) < len(PARITY_QUERIES):
                got += client.read_until("ReadyForQuery")
                if not got:
                    break
            return [m for m in got if isinstance(m, (RowDescription, DataRow, CommandComplete, ErrorResponse))]
        finally:
            client.close()
    through, straight = messages(proxies["parity"].port), messages(pg.port)
    assert len(straight) > 2000
    assert through == straight
