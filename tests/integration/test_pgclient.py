"""wireproxy's own PostgreSQL client against the real server: every auth method the test cluster
offers, parameters that travel apart from the SQL, LISTEN/NOTIFY, errors and connection loss."""

from __future__ import annotations

import pytest
import trio

from wireproxy.pgclient import PgClient, PgClientError, PgConnectionLost, PgServerError, PgTarget


def target(pg, user: str | None = None, database: str = "postgres") -> PgTarget:
    return PgTarget(host=pg.host, port=pg.port, user=user or pg.user, database=database)


@pytest.mark.parametrize("user, password", [
    (None, None),                            # trust
    ("passworduser", "clear-secret"),        # cleartext
    ("md5user", "md5-secret"),               # md5
    ("scramuser", "scram-secret"),           # SCRAM-SHA-256
])
async def test_each_auth_method_connects(pg, user, password):
    client = await PgClient.connect(target(pg, user), password)
    try:
        result = await client.execute("select current_user, 1 + 1")
        assert result.rows == [(user or pg.user, "2")] and result.columns == ("current_user", "?column?")
        assert client.parameters["server_encoding"] == "UTF8" and client.process_id
    finally:
        await client.aclose()


@pytest.mark.parametrize("user", ["passworduser", "md5user", "scramuser"])
async def test_a_wrong_password_is_refused_by_the_server(pg, user):
    with pytest.raises(PgServerError) as info:
        await PgClient.connect(target(pg, user), "not-the-password")
    assert info.value.sqlstate == "28P01" and "not-the-password" not in str(info.value)


async def test_a_password_request_without_a_password(pg):
    with pytest.raises(PgClientError, match="asks for a password"):
        await PgClient.connect(target(pg, "scramuser"), None)


async def test_the_scram_password_goes_through_saslprep(pg):
    # The server SASLpreps the password when it stores the verifier: a soft hyphen maps to
    # nothing, so "I<soft hyphen>X" and "IX" are the same password to both sides.
    pg.psql("alter role scramuser password 'I\u00adX'")
    try:
        for password in ("IX", "I\u00adX"):
            client = await PgClient.connect(target(pg, "scramuser"), password)
            await client.aclose()
    finally:
        pg.psql("alter role scramuser password 'scram-secret'")


async def test_parameters_never_become_sql(pg):
    client = await PgClient.connect(target(pg))
    try:
        nasty = "x'); drop table pg_class; --\n\"\\ é 🐘"
        result = await client.execute("select $1::text, $2::int, $3::text is null, $4::jsonb ->> 'k', $5::bool",
                                      nasty, 42, None, '{"k": "v"}', True)
        assert result.rows == [(nasty, "42", "t", "v", "t")]
        assert result.tag == "SELECT 1"
    finally:
        await client.aclose()


async def test_a_server_error_leaves_the_connection_usable(pg):
    client = await PgClient.connect(target(pg))
    try:
        with pytest.raises(PgServerError) as info:
            await client.execute("select * from no_such_table_here")
        assert info.value.sqlstate == "42P01"
        with pytest.raises(PgServerError):
            await client.execute("select $1::int", "not a number")
        assert (await client.execute("select 'still here'")).rows == [("still here",)]
        multi = await client.execute("create temp table pgc(x int); insert into pgc values (1), (2); select count(*) from pgc")
        assert multi.rows == [("2",)]
    finally:
        await client.aclose()


async def test_listen_wakes_on_notify_from_another_connection(pg):
    listener = await PgClient.connect(target(pg))
    sender = await PgClient.connect(target(pg))
    try:
        await listener.execute("listen pgclient_test")
        got = []

        async def wait():
            got.append(await listener.notification())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []                                   # it waits on the socket
            await sender.execute("select pg_notify('pgclient_test', $1)", "payload-1")
        assert got[0].channel == "pgclient_test" and got[0].payload == "payload-1"
        assert got[0].process_id == sender.process_id
        # A notification that arrives during a query is kept for the next notification() call.
        await sender.execute("notify pgclient_test, 'payload-2'")
        await listener.execute("select pg_sleep(0.05)")
        assert (await listener.notification()).payload == "payload-2"
    finally:
        await listener.aclose()
        await sender.aclose()


async def test_connection_loss_closes_the_client(pg):
    client = await PgClient.connect(target(pg))
    other = await PgClient.connect(target(pg))
    try:
        await other.execute("select pg_terminate_backend($1)", client.process_id)
        with pytest.raises((PgConnectionLost, PgServerError)):
            await client.execute("select 1")
        assert client.closed
        with pytest.raises(PgConnectionLost, match="closed"):
            await client.execute("select 1")
    finally:
        await client.aclose()
        await other.aclose()


async def test_an_operation_cancelled_midway_gives_up_the_connection(pg):
    client = await PgClient.connect(target(pg))
    with trio.move_on_after(0.2):
        await client.execute("select pg_sleep(30)")
    assert client.closed
    with pytest.raises(PgConnectionLost):
        await client.execute("select 1")


async def test_unreachable_server(pg):
    from pgcluster import free_port
    with pytest.raises(PgConnectionLost, match="cannot connect"):
        await PgClient.connect(PgTarget(host="127.0.0.1", port=free_port()))


def test_targets_from_dsns():
    assert PgTarget.parse("postgresql://app@db.example:6543/state") == PgTarget("db.example", 6543, "app", "state")
    assert PgTarget.parse("host=10.0.0.1 port=5433 user=w dbname=x") == PgTarget("10.0.0.1", 5433, "w", "x")
    assert PgTarget.parse("postgres://u@h/d?application_name=wp").application_name == "wp"
    assert str(PgTarget.parse("postgresql://app@db:1/")) == "app@db:1/app"
    for bad, problem in [("postgresql://app:secret@db/x", "password"), ("host=h password=p", "password"),
                         ("host=h sslmode=prefer", "is not disable, require or verify-full"), ("host=h sslcert=c", "unsupported"), ("hosth", "key=value"),
                         ("port=99999", "port")]:
        with pytest.raises(ValueError, match=problem):
            PgTarget.parse(bad)
