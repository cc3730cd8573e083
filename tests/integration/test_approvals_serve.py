"""`wireproxy serve` with its admin listener, as a real process: the token file, curl on
/healthz and /metrics (parsed with prometheus_client, moving with traffic), config mistakes,
and two instances sharing the PostgreSQL store (this test process holds, the serving one
decides through the CLI)."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import psycopg
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from proxyprocess import ROOT, WIREPROXY
from wireproxy.approvals import ApprovalRequest, Broker
from wireproxy.approvals.pgstore import PostgresStore
from wireproxy.pgclient import PgTarget

RULES = '[[rule]]\nid = "no-drop"\naction = "block"\nstatements = ["drop"]\n'


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True)


def metrics_of(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*WIREPROXY, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=60)


@pytest.fixture
def served(pg, start_proxy, tmp_path):
    (tmp_path / "rules.toml").write_text(RULES)
    proxy = start_proxy(config=f'[admin]\nlisten = "127.0.0.1:0"\n\n[[postgres]]\nlisten = "127.0.0.1:0"\n'
                               f'upstream = "127.0.0.1:{pg.port}"\nrules = ["rules.toml"]\n')
    proxy.admin = f"http://127.0.0.1:{proxy.ports('admin')[0]}"
    proxy.token_file = tmp_path / "wireproxy-admin.token"
    return proxy


def test_serve_creates_the_token_and_curl_reads_health_and_metrics(pg, served):
    assert stat.S_IMODE(served.token_file.stat().st_mode) == 0o600
    created = served.wait_for("admin.token_created")
    token = served.token_file.read_text().strip()
    assert token not in "\n".join(served.lines)                      # the token is never logged
    assert created["token_file"] == str(served.token_file)

    health = curl(f"{served.admin}/healthz")
    assert json.loads(health.stdout)["status"] == "ok"
    anonymous = curl("-o", "/dev/null", "-w", "%{http_code}", f"{served.admin}/metrics")
    assert anonymous.stdout == "401"

    auth = ["-H", f"Authorization: Bearer {token}"]
    before = metrics_of(curl(*auth, f"{served.admin}/metrics").stdout)
    for _ in range(2):
        with psycopg.connect(pg.dsn(port=served.port), autocommit=True) as conn:
            conn.execute("select 1").fetchall()
            conn.execute("select 1").fetchall()
    served.wait_for("connection.close")
    with psycopg.connect(pg.dsn(port=served.port), autocommit=True) as conn:
        conn.execute("select 2").fetchall()
        during = metrics_of(curl(*auth, f"{served.admin}/metrics").stdout)
    sessions = ("wireproxy_sessions_total", (("protocol", "postgres"),))
    open_now = ("wireproxy_sessions_open", (("protocol", "postgres"),))
    from_server = ("wireproxy_bytes_total", (("direction", "from_server"), ("protocol", "postgres")))
    hits, misses = ("wireproxy_policy_cache_hits_total", ()), ("wireproxy_policy_cache_misses_total", ())
    assert during[sessions] == before[sessions] + 3
    assert during[open_now] == before[open_now] + 1
    assert during[from_server] > before[from_server]                 # the two closed sessions' bytes
    assert during[misses] > before[misses] and during[hits] > before[hits]   # "select 1" twice


def test_the_cli_finds_the_api_through_the_config(served, tmp_path):
    done = cli("approvals", "list", "--json", "--config", str(tmp_path / "wireproxy-0.toml"))
    assert done.returncode == 2 and "cannot reach the admin API at http://127.0.0.1:0" in done.stderr
    port = served.ports("admin")[0]
    done = cli("approvals", "list", "--json", "--config", str(tmp_path / "wireproxy-0.toml"),
               "--admin", f"127.0.0.1:{port}")
    assert done.returncode == 0 and done.stdout == "", done.stderr


@pytest.mark.parametrize("approvals, problem", [
    ('store = "postgres"', "needs approvals.dsn"),
    ('store = "postgres"\ndsn = "postgresql://u:hunter2@h/db"', "give it through the environment"),
    ('store = "redis"', "approvals.store must be one of memory, postgres"),
    ('timeout = "soon"', "approvals.timeout"),
    ('webhook = "ftp://x"', "http:// or https:// URL"),
    ('store = "postgres"\ndsn = "postgresql://u@h/db"\npassword_env = "WIREPROXY_NOT_SET_ANYWHERE"',
     "WIREPROXY_NOT_SET_ANYWHERE is not set"),
])
def test_config_mistakes_are_one_line_and_exit_2(tmp_path, approvals, problem):
    config = tmp_path / "wireproxy.toml"
    config.write_text(f"[approvals]\n{approvals}\n")
    done = cli("serve", "--config", str(config), "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1")
    assert done.returncode == 2 and problem in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "hunter2" not in done.stderr


async def test_two_instances_share_the_postgres_store(pg, start_proxy, tmp_path):
    """The serving process and a broker here are two instances of one deployment: a request this
    process holds is listed and approved through the other's admin API, and released here."""
    table = "approvals_two_instances"
    config = (f'[admin]\nlisten = "127.0.0.1:0"\n\n[approvals]\nstore = "postgres"\n'
              f'dsn = "postgresql://scramuser@127.0.0.1:{pg.port}/postgres"\n'
              f'password_env = "WIREPROXY_APPROVALS_PASSWORD"\ntable = "{table}"\n\n'
              f'[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:{pg.port}"\n')
    os.environ["WIREPROXY_APPROVALS_PASSWORD"] = "scram-secret"
    try:
        proxy = await trio.to_thread.run_sync(lambda: start_proxy(config=config))
    finally:
        del os.environ["WIREPROXY_APPROVALS_PASSWORD"]
    await trio.to_thread.run_sync(lambda: proxy.wait_for("approvals.store_connected"))
    config_file = tmp_path / "wireproxy-0.toml"
    admin = f"127.0.0.1:{proxy.ports('admin')[0]}"       # the config says port 0: ask the process

    broker = Broker(PostgresStore(PgTarget(pg.host, pg.port, pg.user, "postgres"), table=table))
    async with trio.open_nursery() as nursery:
        await nursery.start(broker.run)
        ticket = await broker.submit(ApprovalRequest("alice", "app", "DELETE FROM orders WHERE day < now()",
                                                     "ask-deletes", ("bob",), None, "delete from orders where day < now()"))

        async def run_cli(*args):
            return await trio.to_thread.run_sync(
                lambda: cli("approvals", *args, "--config", str(config_file), "--admin", admin))

        listed = await run_cli("list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [ticket.id]
        refused = await run_cli("approve", ticket.id, "--as", "carol")
        assert refused.returncode == 1 and "carol is not an approver" in refused.stderr
        approved = await run_cli("approve", ticket.id, "--as", "bob", "--reason", "quarterly cleanup")
        assert approved.returncode == 0, approved.stderr
        with trio.fail_after(20):
            outcome = await ticket.wait()
        assert outcome.approved and outcome.approver == "bob" and outcome.reason == "quarterly cleanup"
        nursery.cancel_scope.cancel()
    assert "scram-secret" not in "\n".join(proxy.lines)
