"""Protocol 3.2 through the proxy (PostgreSQL 18 and libpq 18), and its negotiation with older
servers: startup, 32-byte BackendKeyData, CancelRequest with long keys, NegotiateProtocolVersion.

Runs on every `pg` install: PostgreSQL 18 answers 3.2 with a 32-byte cancel key; PostgreSQL 15
answers NegotiateProtocolVersion (3.0) and a 4-byte key. Either way the client must see through
the proxy exactly what it sees directly, and a cancel with the key it was given must land.
"""

from __future__ import annotations

import socket
import threading
import time

import psycopg
import pytest

from protocols.postgres import (BackendKeyData, CancelRequest, ErrorResponse, NegotiateProtocolVersion,
                                Query)
from rawclient import RawClient

PROTOCOL_3_2 = (3 << 16) | 2
LATEST = " max_protocol_version=latest"


def served_protocol(pg) -> int:
    return 30002 if pg.binaries.major >= 18 else 30000


def key_length(pg) -> int:
    return 32 if pg.binaries.major >= 18 else 4


def test_the_client_library_speaks_3_2():
    # psycopg-binary ships libpq 18, the first libpq that asks for 3.2: without it these tests
    # would only ever see 3.0.
    assert psycopg.pq.version() >= 180000, psycopg.pq.version()


def test_psycopg_asking_for_the_latest_protocol_gets_what_the_server_speaks(pg, proxy):
    seen = {}
    for where, port in (("direct", pg.port), ("proxy", proxy.port)):
        with psycopg.connect(pg.dsn(port=port) + LATEST, autocommit=True) as conn:
            seen[where] = (conn.info.full_protocol_version,
                           conn.execute("select %s::int + 1, %s::text", (41, "x"), prepare=True).fetchone(),
                           conn.execute("select current_setting('server_version_num')::int / 10000").fetchone())
    assert seen["proxy"] == seen["direct"]
    assert seen["proxy"][0] == served_protocol(pg)
    assert seen["proxy"][2] == (pg.binaries.major,)


def _startup_32(port: int) -> tuple[RawClient, list]:
    client = RawClient(port)
    return client, client.startup(PROTOCOL_3_2)


def test_startup_3_2_passes_through_as_the_server_answers_it(pg, proxy):
    kinds = {}
    for where, port in (("direct", pg.port), ("proxy", proxy.port)):
        client, messages = _startup_32(port)
        client.close()
        kinds[where] = [type(m).__name__ for m in messages]
        (key,) = [m for m in messages if isinstance(m, BackendKeyData)]
        assert len(key.secret) == key_length(pg), where
        negotiated = [m for m in messages if isinstance(m, NegotiateProtocolVersion)]
        if pg.binaries.major >= 18:
            assert negotiated == [], where                     # 3.2 accepted as asked
        else:
            # The field the codec calls newest_minor carries the whole version PostgreSQL
            # speaks (PG_PROTOCOL_LATEST: 3 << 16 for 3.0), and libpq reads it that way.
            assert [(m.newest_minor, m.unrecognized) for m in negotiated] == [(3 << 16, ())], where
    assert kinds["proxy"] == kinds["direct"]
    assert kinds["proxy"][-1] == "ReadyForQuery"


def _when_running(pg, marker: str, then) -> threading.Thread:
    """Run `then()` once the query holding `marker` is active on the server (no guessed sleep)."""
    def watch():
        with psycopg.connect(pg.dsn(), autocommit=True) as direct:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                active = direct.execute("select count(*) from pg_stat_activity where state = 'active' "
                                        "and query like %s and pid <> pg_backend_pid()",
                                        (f"%{marker}%",)).fetchone()[0]
                if active:
                    then()
                    return
                time.sleep(0.05)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _send_raw(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.recv(16)          # the proxy closes once it has handled the request


def test_a_cancel_with_the_long_key_lands_through_the_proxy(pg, proxy):
    client, messages = _startup_32(proxy.port)
    (key,) = [m for m in messages if isinstance(m, BackendKeyData)]
    assert len(key.secret) == key_length(pg)
    marker = f"cancel32_{time.monotonic_ns()}"
    mark = len(proxy.events)
    # First a request carrying only the key's first four bytes: a 3.0-shaped key for a 3.2
    # session must not cancel anything (PostgreSQL compares the whole key, and so do we).
    if len(key.secret) > 4:
        _send_raw(proxy.port, CancelRequest(key.process_id, key.secret[:4]).encode())
        proxy.wait_for("cancel.unknown", after=mark)
    watcher = _when_running(pg, marker, lambda: _send_raw(
        proxy.port, CancelRequest(key.process_id, key.secret).encode()))
    client.send(Query(f"select pg_sleep(60), '{marker}'").encode())
    answer = client.read_until("ReadyForQuery")
    watcher.join()
    assert [m.sqlstate for m in answer if isinstance(m, ErrorResponse)] == ["57014"]
    assert proxy.wait_for("cancel.forwarded", after=mark)["backend_pid"] == key.process_id
    client.send(Query("select 1").encode())                   # and the session goes on
    assert not [m for m in client.read_until("ReadyForQuery") if isinstance(m, ErrorResponse)]
    client.close()


def test_psycopg_cancel_under_the_latest_protocol(pg, proxy):
    marker = f"pycancel32_{time.monotonic_ns()}"
    with psycopg.connect(pg.dsn(port=proxy.port) + LATEST, autocommit=True) as conn:
        assert conn.info.full_protocol_version == served_protocol(pg)
        watcher = _when_running(pg, marker, conn.cancel_safe)
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(f"select pg_sleep(60), '{marker}'")
        watcher.join()
        assert conn.execute("select 'after'").fetchone() == ("after",)


def test_a_cut_result_is_cancelled_upstream_with_the_long_key(pg, start_proxy, tmp_path):
    rules = tmp_path / "cap.toml"
    rules.write_text('mode = "enforce"\n[[rule]]\nid = "cap"\naction = "block"\nstatements = ["select"]\n'
                     'max_rows = 10\nmessage = "too many rows"\n')
    proxy = start_proxy(rules=rules)
    marker = f"cut32_{time.monotonic_ns()}"
    with psycopg.connect(pg.dsn(port=proxy.port) + LATEST, autocommit=True) as conn:
        assert conn.info.full_protocol_version == served_protocol(pg)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="result cut by wireproxy rule cap"):
            conn.execute(f"select g, '{marker}' from generate_series(1, 50000000) g")
        proxy.wait_for("session.query_cancelled")
        # The proxy's own CancelRequest carried the 32-byte key: the server really stopped.
        with psycopg.connect(pg.dsn(), autocommit=True) as direct:
            deadline = time.monotonic() + 15
            while direct.execute("select count(*) from pg_stat_activity where state = 'active' and query "
                                 "like %s and pid <> pg_backend_pid()", (f"%{marker}%",)).fetchone()[0]:
                assert time.monotonic() < deadline, "the cut query still runs upstream"
                time.sleep(0.1)
        assert conn.execute("select 'next'").fetchone() == ("next",)
