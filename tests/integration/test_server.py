"""The server around the sessions: auth pass-through, cancel routing, L4 listeners, shutdown,
and what a user sees for a broken config."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time

import psycopg
import pytest

from pgcluster import PgCluster
from protocols.postgres import BackendKeyData, CancelRequest, ErrorResponse, Query
from proxyprocess import ROOT, WIREPROXY
from rawclient import RawClient


@pytest.mark.parametrize("user,password", [("md5user", "md5-secret"), ("scramuser", "scram-secret")])
def test_password_auth_passes_through(pg, proxy, user, password):
    if user == "md5user":
        pg.psql("set password_encryption = 'md5'; alter role md5user password 'md5-secret'")
    with psycopg.connect(pg.dsn(port=proxy.port, user=user, password=password)) as conn:
        assert conn.execute("select current_user").fetchone() == (user,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg.dsn(port=proxy.port, user=user, password="wrong"))


def test_sslmode_prefer_falls_back_to_plain_text(pg, proxy):
    with psycopg.connect(pg.dsn(port=proxy.port) + " sslmode=prefer") as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.pgconn.ssl_in_use is False
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.dsn(port=proxy.port) + " sslmode=require")


def test_gssencmode_prefer_falls_back(pg, proxy):
    try:
        conn = psycopg.connect(pg.dsn(port=proxy.port) + " gssencmode=prefer")
    except psycopg.OperationalError as exc:   # libpq built without GSSAPI refuses the option
        assert "gssencmode" in str(exc)
        return
    with conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_cancel_is_routed_to_the_upstream_that_owns_the_key(pg, start_proxy):
    second = PgCluster.start()
    try:
        config = f"""
[[postgres]]
listen = "127.0.0.1:0"
upstream = "127.0.0.1:{pg.port}"

[[postgres]]
listen = "127.0.0.1:0"
upstream = "127.0.0.1:{second.port}"
"""
        proxy = start_proxy(config=config)
        first_port, second_port = proxy.ports()
        client = RawClient(second_port)
        (key,) = [m for m in client.startup() if isinstance(m, BackendKeyData)]
        client.send(Query("select pg_sleep(30)").encode())
        wait_until_running(second, key.process_id, "select pg_sleep(30)")
        # Send the CancelRequest to the *other* listener: only routing by key can find its owner.
        _send_raw(first_port, CancelRequest(key.process_id, key.secret).encode())
        answer = client.read_until("ReadyForQuery")
        # 57014 comes only from a cancel: a request lost or sent to the wrong server leaves the
        # sleep to end on its own, without an error
        assert [m.sqlstate for m in answer if isinstance(m, ErrorResponse)] == ["57014"]
        client.close()
        forwarded = proxy.wait_for("cancel.forwarded")
        assert forwarded["upstream"] == f"127.0.0.1:{second.port}"
        # A wrong secret for the same backend is dropped, as PostgreSQL does.
        _send_raw(first_port, CancelRequest(key.process_id, b"\0\0\0\0").encode())
        proxy.wait_for("cancel.unknown")
    finally:
        second.stop()


def wait_until_running(cluster, pid: int, query: str, timeout: float = 20.0) -> None:
    """Until PostgreSQL shows backend `pid` running `query` (what a test sends next acts on it)."""
    deadline = time.monotonic() + timeout
    literal = query.replace("'", "''")
    while cluster.psql(f"select count(*) from pg_stat_activity where pid = {int(pid)} and state = 'active' "
                       f"and query = '{literal}'").strip() != "1":
        assert time.monotonic() < deadline, f"{query!r} never started on backend {pid}"
        time.sleep(0.05)


def _send_raw(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        sock.recv(16)


def test_tcp_listener_forwards_bytes_untouched(pg, start_proxy):
    config = f"""
[[tcp]]
listen = "127.0.0.1:0"
upstream = "127.0.0.1:{pg.port}"
allow_from = ["127.0.0.0/8"]
"""
    proxy = start_proxy(config=config)
    (port,) = proxy.ports("tcp")
    with psycopg.connect(pg.dsn(port=port)) as conn:
        assert conn.execute("select count(*) from generate_series(1, 1000)").fetchone() == (1000,)
    closed = proxy.wait_for("tcp.close")
    assert closed["bytes_from_client"] > 0 and closed["bytes_from_server"] > 0


def test_tcp_listener_refuses_clients_outside_allow_from(pg, start_proxy):
    config = f"""
[[tcp]]
listen = "127.0.0.1:0"
upstream = "127.0.0.1:{pg.port}"
allow_from = ["10.0.0.0/8"]
"""
    proxy = start_proxy(config=config)
    (port,) = proxy.ports("tcp")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.dsn(port=port), connect_timeout=5)
    assert proxy.wait_for("tcp.refused")["reason"] == "not in allow_from"


def test_sigterm_drains_sessions_then_exits(pg, start_proxy):
    proxy = start_proxy()
    conn = psycopg.connect(pg.dsn(port=proxy.port), autocommit=True)
    result = {}

    def long_query():
        result["value"] = conn.execute("select pg_sleep(1.5), 'finished'").fetchone()
    worker = threading.Thread(target=long_query)
    worker.start()
    # the query runs on the server: the grace period is what is under test
    wait_until_running(pg, conn.info.backend_pid, "select pg_sleep(1.5), 'finished'")
    proxy.signal(signal.SIGTERM)
    proxy.wait_for("shutdown.draining")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.dsn(port=proxy.port), connect_timeout=3)   # no longer accepting
    worker.join(20)
    assert result["value"] == ("", "finished")     # the running statement was allowed to finish
    conn.close()
    assert proxy.proc.wait(20) == 0
    assert proxy.count("shutdown.done") == 1


def test_second_signal_closes_at_once(pg, start_proxy):
    # An hour's grace: only the second signal can end this session before the test times out.
    proxy = start_proxy(config=f'shutdown_grace = 3600\n\n[[postgres]]\nlisten = "127.0.0.1:0"\n'
                               f'upstream = "127.0.0.1:{pg.port}"\n')
    conn = psycopg.connect(pg.dsn(port=proxy.port), autocommit=True)
    proxy.signal(signal.SIGTERM)
    assert proxy.wait_for("shutdown.draining")["sessions"] == 1
    proxy.signal(signal.SIGINT)
    proxy.wait_for("shutdown.now")
    assert proxy.proc.wait(60) == 0
    assert proxy.count("shutdown.done") == 1
    with pytest.raises(psycopg.OperationalError):
        conn.execute("select 1")


@pytest.mark.parametrize("config,expected", [
    ('[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "nowhere"\n', ":3: postgres[0].upstream: 'nowhere' is not HOST:PORT"),
    ('[[postgres]]\nlisten = "127.0.0.1:0"\nupstrem = "127.0.0.1:5432"\n', ":3: unknown key 'postgres[0].upstrem'"),
    ('[log]\ndir = 5\n', ":2: log.dir must be a string, not an integer"),
    ('[[postgres]\n', ":1: invalid TOML"),
])
def test_bad_config_is_one_clear_line_and_exit_2(tmp_path, config, expected):
    path = tmp_path / "wireproxy.toml"
    path.write_text(config)
    run = subprocess.run([*WIREPROXY, "serve", "--config", str(path)], capture_output=True, text=True,
                         timeout=30, cwd=ROOT)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert str(path) + expected in lines[0]


def test_listen_address_in_use_is_a_clear_error(pg, proxy):
    run = subprocess.run([*WIREPROXY, "serve", "--listen", f"127.0.0.1:{proxy.port}", "--upstream",
                          f"127.0.0.1:{pg.port}"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert run.returncode == 2
    assert f"cannot listen on 127.0.0.1:{proxy.port}" in run.stderr
    assert "Traceback" not in run.stderr
