"""Big results, COPY both ways, cancel and LISTEN/NOTIFY through the proxy."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time

import psycopg
import pytest

MILLION = "select g, md5(g::text), g % 7 = 0, repeat('x', g % 13) from generate_series(1, 1000000) g"


def psql_out(dsn: str, command: str) -> bytes:
    run = subprocess.run(["psql", "-X", "-A", "-t", "-d", dsn, "-c", command], capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_million_rows_are_byte_identical(pg, proxy):
    direct = psql_out(pg.dsn(), MILLION)
    through = psql_out(pg.dsn(port=proxy.port), MILLION)
    assert len(direct.splitlines()) == 1_000_000
    assert hashlib.sha256(through).digest() == hashlib.sha256(direct).digest()


def test_million_rows_psycopg_binary(pg, proxy):
    def digest(dsn):
        h = hashlib.sha256()
        with psycopg.connect(dsn) as conn, conn.cursor(binary=True) as cur:
            cur.execute(MILLION)
            for row in cur:
                h.update(repr(row).encode())
        return h.hexdigest()
    assert digest(pg.dsn(port=proxy.port)) == digest(pg.dsn())


def test_copy_to_stdout_is_byte_identical(pg, proxy):
    command = f"copy ({MILLION}) to stdout with (format csv, header)"
    direct = psql_out(pg.dsn(), command)
    through = psql_out(pg.dsn(port=proxy.port), command)
    assert through == direct and len(through) > 40_000_000


def test_copy_binary_to_stdout_is_byte_identical(pg, proxy):
    def copy(dsn):
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            with cur.copy("copy (select g, md5(g::text) from generate_series(1, 100000) g) to stdout (format binary)") as c:
                return b"".join(bytes(block) for block in c)
    assert copy(pg.dsn(port=proxy.port)) == copy(pg.dsn())


def test_copy_from_stdin_loads_the_same_rows(pg, proxy):
    pg.psql("drop table if exists copied; create table copied (id int, name text, note text)")
    rows = [(i, f"name {i}", None if i % 5 == 0 else "tab\there, newline\\n and 'quotes'") for i in range(200_000)]
    with psycopg.connect(pg.dsn(port=proxy.port)) as conn, conn.cursor() as cur:
        with cur.copy("copy copied from stdin") as copy:
            for row in rows:
                copy.write_row(row)
    with psycopg.connect(pg.dsn()) as conn:
        loaded = conn.execute("select id, name, note from copied order by id").fetchall()
    assert loaded == rows


def test_copy_from_stdin_failure_rolls_back(pg, proxy):
    pg.psql("drop table if exists copied2; create table copied2 (id int)")
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            with conn.cursor().copy("copy copied2 from stdin") as copy:
                copy.write(b"1\n2\nnot-a-number\n")
        assert conn.execute("select count(*) from copied2").fetchone() == (0,)


def test_cancel_long_sleep_through_proxy(pg, proxy):
    with psycopg.connect(pg.dsn(port=proxy.port)) as conn:
        pid = conn.info.backend_pid

        def cancel_once_running():
            with psycopg.connect(pg.dsn(), autocommit=True) as direct:
                while not direct.execute("select count(*) from pg_stat_activity where pid = %s and state = "
                                         "'active' and query = 'select pg_sleep(30)'", (pid,)).fetchone()[0]:
                    time.sleep(0.05)
            conn.cancel()
        canceller = threading.Thread(target=cancel_once_running, daemon=True)
        canceller.start()
        # QueryCanceled comes only from the cancel: without it the sleep ends on its own, no error
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(30)")
        canceller.join(10)
        conn.rollback()
        assert conn.execute("select 'still usable'").fetchone() == ("still usable",)
    assert proxy.count("cancel.forwarded") >= 1


def test_listen_notify_through_proxy(pg, proxy):
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as listener:
        listener.execute("listen wireproxy_channel")
        with psycopg.connect(pg.dsn(), autocommit=True) as sender:
            sender.execute("notify wireproxy_channel, 'payload-1'")
            sender.execute("select pg_notify('wireproxy_channel', 'payload-2')")
        received = []
        for notify in listener.notifies(timeout=10, stop_after=2):
            received.append((notify.channel, notify.payload))
        assert received == [("wireproxy_channel", "payload-1"), ("wireproxy_channel", "payload-2")]
