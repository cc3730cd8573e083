"""Every failure the proxy must survive: each one ends one session cleanly, with the error the
client should see, while another session goes on during and after it."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from pgcluster import free_port
from protocols.postgres import ErrorResponse, Query, ReadyForQuery
from rawclient import RawClient
from tunnel import Tunnel


def errors(messages) -> list[ErrorResponse]:
    return [m for m in messages if type(m) is ErrorResponse]


def assert_serving(pg, port: int) -> None:
    with psycopg.connect(pg.dsn(port=port), connect_timeout=10) as conn:
        assert conn.execute("select 'alive'").fetchone() == ("alive",)


def test_upstream_unreachable_gives_08001_naming_it(pg, start_proxy):
    dead = free_port()
    proxy = start_proxy(upstream=dead)
    client = RawClient(proxy.port)
    (error,) = errors(client.startup())
    assert error.sqlstate == "08001" and error.severity == "FATAL"
    assert f"127.0.0.1:{dead}" in error.message
    with pytest.raises(psycopg.OperationalError, match=f"upstream 127.0.0.1:{dead}"):
        psycopg.connect(pg.dsn(port=proxy.port), connect_timeout=10)
    proxy.wait_for("upstream.unreachable")
    assert proxy.proc.poll() is None


@pytest.fixture
def two_listeners(pg, start_proxy):
    """Listener 0 reaches PostgreSQL through a breakable tunnel, listener 1 directly."""
    tunnel = Tunnel(pg.port)
    config = f"""
[[postgres]]
listen = "127.0.0.1:0"
upstream = "127.0.0.1:{tunnel.port}"
max_message_size = 1048576

[[postgres]]
listen = "127.0.0.1:0"
upstream = "127.0.0.1:{pg.port}"
"""
    proxy = start_proxy(config=config)
    ports = proxy.ports()
    assert len(ports) == 2
    yield proxy, tunnel, ports
    tunnel.close()


def test_upstream_killed_mid_query_gives_08006(pg, two_listeners):
    proxy, tunnel, (broken_port, healthy_port) = two_listeners
    with psycopg.connect(pg.dsn(port=healthy_port), autocommit=True) as other:
        conn = psycopg.connect(pg.dsn(port=broken_port), autocommit=True)
        threading.Timer(0.5, tunnel.break_all).start()
        with pytest.raises(psycopg.OperationalError) as info:
            conn.execute("select pg_sleep(20)")
        assert "connection to upstream" in str(info.value) and "lost" in str(info.value)
        assert info.value.sqlstate == "08006"
        assert conn.closed
        assert other.execute("select 'during'").fetchone() == ("during",)
    assert_serving(pg, healthy_port)
    assert_serving(pg, broken_port)       # the tunnel accepts new connections again


def test_malformed_client_bytes_get_08p01_and_close(pg, two_listeners):
    proxy, _, (_, port) = two_listeners
    with psycopg.connect(pg.dsn(port=port), autocommit=True) as other:
        client = RawClient(port)
        assert isinstance(client.startup()[-1], ReadyForQuery)
        client.send(b"\x01\x00\x00\x00\x08junk")          # no such message type
        (error,) = errors(client.read_all())
        assert error.sqlstate == "08P01" and error.severity == "FATAL"
        client.close()
        lying = RawClient(port)
        lying.startup()
        lying.send(b"Q\x00\x00\x00\x02")                    # a length shorter than itself
        assert errors(lying.read_all())[0].sqlstate == "08P01"
        assert other.execute("select 'during'").fetchone() == ("during",)
    assert_serving(pg, port)


def test_garbage_startup_packet_gets_an_error(pg, two_listeners):
    _, _, (_, port) = two_listeners
    client = RawClient(port)
    client.send(b"\x00\x00\xff\xff" + b"x" * 100)            # a 65535-byte startup packet
    (error,) = errors(client.read_all())
    assert error.sqlstate == "08P01"
    assert_serving(pg, port)


def test_oversized_message_is_refused(pg, two_listeners):
    proxy, _, (small_port, port) = two_listeners
    conn = psycopg.connect(pg.dsn(port=small_port), autocommit=True)
    with pytest.raises(psycopg.OperationalError, match="over the limit of 1048576"):
        conn.execute("select length(%s)", ("x" * 2_000_000,))
    assert conn.closed
    assert_serving(pg, small_port)
    with psycopg.connect(pg.dsn(port=small_port), autocommit=True) as conn:
        # under the cap is fine, and a big *result* is not capped by the client-side limit
        assert conn.execute("select length(%s)", ("x" * 500_000,)).fetchone() == (500_000,)
        assert conn.execute("select length(repeat('y', 3000000))").fetchone() == (3_000_000,)
        assert len(conn.execute("select repeat('y', 3000000)").fetchone()[0]) == 3_000_000


def test_client_vanishing_mid_result_cancels_upstream(pg, two_listeners):
    proxy, _, (_, port) = two_listeners
    marker = f"vanish_{time.monotonic_ns()}"
    client = RawClient(port)
    client.startup()
    client.send(Query(f"select g, '{marker}' from generate_series(1, 50000000) g").encode())
    client.read()                                           # the result has started to flow
    client.close()
    deadline = time.monotonic() + 15
    with psycopg.connect(pg.dsn(), autocommit=True) as direct:
        while True:
            running = direct.execute("select count(*) from pg_stat_activity where query like %s "
                                     "and pid <> pg_backend_pid()", (f"%{marker}%",)).fetchone()[0]
            if running == 0:
                break
            assert time.monotonic() < deadline, "the orphaned query still runs upstream"
            time.sleep(0.1)
    assert_serving(pg, port)
