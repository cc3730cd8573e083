"""serve probes its upstreams at start: one clear warning per unreachable one, no refusal to
start; /healthz (tokenless, secret-free) says which answer, and follows them when they change."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import psycopg
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthz(proxy) -> dict:
    port = proxy.ports("admin")[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_an_unreachable_upstream_is_one_warning_and_degraded_health(pg, start_proxy, tmp_path):
    dead = free_port()
    proxy = start_proxy(config=f'[admin]\nlisten = "127.0.0.1:0"\n\n'
                               f'[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:{pg.port}"\n\n'
                               f'[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:{dead}"\n')
    warning = proxy.wait_for("upstream.down")
    assert warning["upstream"] == f"127.0.0.1:{dead}" and warning["level"] == "warning"
    assert warning["kind"] == "postgres" and "Connection refused" in warning["error"] and "08001" in warning["note"]
    health = healthz(proxy)
    assert health["status"] == "degraded"
    assert health["upstreams"] == {f"127.0.0.1:{pg.port}": "reachable", f"127.0.0.1:{dead}": "unreachable"}
    token = (tmp_path / "wireproxy-admin.token").read_text().strip()
    assert token not in json.dumps(health)
    # serving anyway: the live upstream works, the dead one is 08001 naming it
    live_port, dead_port = proxy.ports()
    with psycopg.connect(pg.dsn(port=live_port)) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match=f"127.0.0.1:{dead}"):
        psycopg.connect(pg.dsn(port=dead_port), connect_timeout=10)
    assert proxy.count("upstream.down") == 1                    # once, not per probe (sessions log their own)


def test_health_follows_an_upstream_that_comes_up(pg, start_proxy):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]                             # bound, not listening: refused
    try:
        proxy = start_proxy(config=f'[admin]\nlisten = "127.0.0.1:0"\n\n'
                                   f'[[tcp]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:{port}"\n')
        assert proxy.wait_for("upstream.down")["kind"] == "tcp"
        assert healthz(proxy)["upstreams"] == {f"127.0.0.1:{port}": "unreachable"}
        server.listen()
        mark = len(proxy.events)
        deadline = time.monotonic() + 30                        # health re-probes every few seconds
        while healthz(proxy)["status"] != "ok":
            assert time.monotonic() < deadline, "health never saw the upstream come up"
            time.sleep(0.5)
        assert proxy.wait_for("upstream.up", after=mark)["upstream"] == f"127.0.0.1:{port}"
    finally:
        server.close()


def test_a_reachable_upstream_is_not_worth_a_line(pg, start_proxy):
    proxy = start_proxy(config=f'[admin]\nlisten = "127.0.0.1:0"\n\n'
                               f'[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:{pg.port}"\n')
    assert healthz(proxy) == {"status": "ok", "upstreams": {f"127.0.0.1:{pg.port}": "reachable"},
                              "approvals_store": "memory", "approvals_store_connected": True}
    assert proxy.count("upstream.down") == 0 and proxy.count("upstream.up") == 0
