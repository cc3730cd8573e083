"""`serve --workers 2`: real processes on shared ports, real clients.

Which worker a connection landed on comes from the `worker` field that every worker's log line
carries, matched by the client's own port. The kernel spreads connections at random, so tests
open connections until each worker has some, and repeat cancels until both paths (the cancel
lands on the owner, or on its sibling) have been taken, asserting every single one works.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from proxyprocess import ROOT, ProxyProcess

RULES = """
[[rule]]
id = "no-drop"
action = "block"
statements = ["drop"]
"""


def config_text(pg, rules, tmp_path, extra: str = "") -> str:
    return f"""
workers = 2
{extra}
[log]
dir = "{tmp_path / 'sessions'}"

[[postgres]]
listen = "127.0.0.1:0"
upstream = "127.0.0.1:{pg.port}"
rules = ["{rules}"]
"""


@pytest.fixture
def workers(pg, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    path = tmp_path / "wireproxy.toml"
    path.write_text(config_text(pg, rules, tmp_path))
    proxy = ProxyProcess(["serve", "--config", str(path)])
    proxy.rules_path = rules
    proxy.wait_for("ready", timeout=60)
    yield proxy
    proxy.stop()


def worker_of(proxy: ProxyProcess, conn: psycopg.Connection) -> int:
    with socket.fromfd(conn.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM) as sock:
        port = sock.getsockname()[1]
    return proxy.wait_for("connection.open", client=f"127.0.0.1:{port}")["worker"]


def connections_on_both(pg, proxy: ProxyProcess, *, autocommit: bool = True) -> dict[int, psycopg.Connection]:
    """One connection on each worker (and the spares closed)."""
    found: dict[int, psycopg.Connection] = {}
    spares = []
    for _ in range(64):
        conn = psycopg.connect(pg.dsn(port=proxy.port), autocommit=autocommit)
        worker = worker_of(proxy, conn)
        if worker in found:
            spares.append(conn)
        else:
            found[worker] = conn
        if len(found) == 2:
            break
    for conn in spares:
        conn.close()
    assert sorted(found) == [1, 2], "64 connections all landed on one worker"
    return found


def cancel_a_sleep(pg, conn: psycopg.Connection) -> None:
    """pg_sleep(30) on `conn`, cancelled through wireproxy (libpq opens a new connection)."""
    pid = conn.info.backend_pid

    def cancel_once_running():
        with psycopg.connect(pg.dsn(), autocommit=True) as direct:
            while not direct.execute("select count(*) from pg_stat_activity where pid = %s and state = "
                                     "'active' and query = 'select pg_sleep(30)'", (pid,)).fetchone()[0]:
                time.sleep(0.02)          # polling the server's own view of the query, not a guess
        conn.cancel()

    canceller = threading.Thread(target=cancel_once_running, daemon=True)
    canceller.start()
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute("select pg_sleep(30)")
    assert time.monotonic() - started < 15
    canceller.join(10)


def test_both_workers_serve_and_psql_works(pg, workers):
    ready = workers.wait_for("ready")
    assert ready["workers"] == 2 and len(set(ready["pids"])) == 2
    assert workers.count("listening", kind="postgres") == 1      # one port, told once
    assert {e["worker"] for e in workers.events if e.get("event") == "worker.ready"} == {1, 2}
    conns = connections_on_both(pg, workers)
    for worker, conn in conns.items():
        assert conn.execute("select %s::int + 1", (worker,)).fetchone() == (worker + 1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-drop"):
            conn.execute("drop table if exists nothing_here")
        conn.close()
    done = subprocess.run(["psql", pg.dsn(port=workers.port), "-tAc", "select 'via psql'"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "via psql", done.stderr


def test_cancel_reaches_the_worker_that_owns_the_key(pg, workers):
    conns = connections_on_both(pg, workers, autocommit=False)
    paths = {"local": 0, "relayed": 0}
    for attempt in range(40):
        conn = conns[attempt % 2 + 1]
        mark = len(workers.events)
        cancel_a_sleep(pg, conn)
        conn.rollback()
        forwarded = workers.wait_for("cancel.forwarded", after=mark)
        if forwarded["client"] == "sibling worker":
            relayed = workers.wait_for("cancel.relayed", after=mark)
            assert relayed["worker"] != forwarded["worker"] == attempt % 2 + 1
            paths["relayed"] += 1
        else:
            assert forwarded["worker"] == attempt % 2 + 1
            paths["local"] += 1
        if attempt >= 5 and min(paths.values()) >= 2:
            break
    assert min(paths.values()) >= 2, paths
    assert workers.count("cancel.unknown") == 0
    for conn in conns.values():
        assert conn.execute("select 'still usable'").fetchone() == ("still usable",)
        conn.close()


def test_sighup_reloads_the_rules_in_every_worker(pg, workers):
    conns = connections_on_both(pg, workers)
    workers.rules_path.write_text(RULES + '\n[[rule]]\nid = "no-one"\naction = "block"\n'
                                  'statements = ["select"]\nfunctions = ["version"]\n')
    mark = len(workers.events)
    workers.signal(signal.SIGHUP)
    for worker in (1, 2):
        workers.wait_for("rules.reloaded", after=mark, worker=worker, why="SIGHUP")
    for conn in conns.values():
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-one"):
            conn.execute("select version()")
        conn.close()


def test_a_killed_worker_is_restarted_and_sigterm_ends_all(pg, workers):
    first = {e["worker"]: e["pid"] for e in workers.events if e.get("event") == "worker.started"}
    mark = len(workers.events)
    os.kill(first[2], signal.SIGKILL)
    died = workers.wait_for("worker.died", after=mark)
    assert died["worker"] == 2 and died["status"] == "killed by SIGKILL"
    back = workers.wait_for("worker.serving", after=mark, timeout=60)
    assert back["worker"] == 2 and back["pid"] != first[2]
    conns = connections_on_both(pg, workers)          # the new worker takes connections
    for conn in conns.values():
        conn.close()
    pids = {e["pid"] for e in workers.events if e.get("event") == "worker.started"}
    assert workers.stop() == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert workers.count("shutdown.done", workers=2) == 1


def test_session_logs_of_both_workers_verify(pg, workers, tmp_path):
    conns = connections_on_both(pg, workers)
    for conn in conns.values():
        conn.execute("select 1")
        conn.close()
    assert workers.stop() == 0
    assert workers.count("keys.created") == 1 and "worker" not in workers.wait_for("keys.created")
    listed = run_cli("sessions", "list", "--json", "--log-dir", str(tmp_path / "sessions"))
    assert listed.returncode == 0, listed.stderr
    assert len([json.loads(line) for line in listed.stdout.splitlines()]) >= 2
    verified = run_cli("sessions", "verify", "--log-dir", str(tmp_path / "sessions"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_metrics_sum_every_worker(pg, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    path = tmp_path / "wireproxy.toml"
    path.write_text(config_text(pg, rules, tmp_path, extra=f"""
[admin]
listen = "127.0.0.1:0"

[approvals]
store = "postgres"
dsn = "{pg.url()}"
"""))
    proxy = ProxyProcess(["serve", "--config", str(path)])
    try:
        proxy.wait_for("ready", timeout=60)
        admin = proxy.ports("admin")[0]
        conns = connections_on_both(pg, proxy)
        opened = proxy.count("connection.open")
        token = Path(proxy.wait_for("listening", kind="admin")["token_file"]).read_text().strip()
        for _ in range(6):          # whichever worker answers, it sums both
            request = urllib.request.Request(f"http://127.0.0.1:{admin}/metrics",
                                             headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
            assert f'wireproxy_sessions_total{{protocol="postgres"}} {opened}' in text
        for conn in conns.values():
            conn.close()
    finally:
        assert proxy.stop() == 0


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wireproxy.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.parametrize(("extra", "problem"), [
    ('[admin]\nlisten = "127.0.0.1:0"\n', 'needs [approvals] store = "postgres"'),
    ('workers_typo = 3\n', "workers_typo"),
])
def test_refused_before_any_worker_starts(pg, tmp_path, extra, problem):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    path = tmp_path / "wireproxy.toml"
    path.write_text(config_text(pg, rules, tmp_path, extra=extra))
    done = run_cli("serve", "--config", str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0] and str(path) in lines[0], done.stderr


def test_a_bad_rule_file_or_workers_value_is_one_line(pg, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text("[[rule]]\nid = 'x'\naction = 'explode'\n")
    path = tmp_path / "wireproxy.toml"
    path.write_text(config_text(pg, rules, tmp_path))
    done = run_cli("serve", "--config", str(path))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(rules) in done.stderr and "worker.started" not in done.stderr
    rules.write_text(RULES)
    done = run_cli("serve", "--config", str(path), "--workers", "many")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "wireproxy: --workers: workers must be a positive integer or \"auto\", not 'many'"], done.stderr
