"""Statements held for approval in a live Postgres session, end to end: psycopg through a real
`wireproxy serve`, decisions through the real CLI against its admin API, and the server's own
view (pg_stat_activity) to show that a held statement never reached it.

The client learns the approval id from the NoticeResponse wireproxy sends while it waits
(psycopg's notice handler); nothing here sleeps to guess.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxyprocess import ROOT, WIREPROXY

RULES = """
[[rule]]
id = "ask-ledger"
action = "approve"
statements = ["select"]
tables = ["ledger"]
timeout = "20s"
message = "reading the ledger needs a second pair of eyes"

[[rule]]
id = "ask-quick"
action = "approve"
statements = ["select"]
tables = ["quick"]
timeout = "2s"

[[rule]]
id = "ask-alice-only"
action = "approve"
statements = ["delete"]
tables = ["ledger"]
approvers = ["alice"]
"""
WAITING = re.compile(r"waiting for approval (ap-[a-z0-9]+): wireproxy approvals approve \1")


def config(pg, tmp_path, extra: str = "") -> str:
    (tmp_path / "rules.toml").write_text(RULES)
    return (f'[admin]\nlisten = "127.0.0.1:0"\n\n[approvals]\nnotice_interval = 0.5\n{extra}\n'
            f'[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:{pg.port}"\nrules = ["rules.toml"]\n')


@pytest.fixture
def ledger(pg):
    pg.psql("drop table if exists ledger, quick; create table ledger (id int, amount int);"
            "insert into ledger values (1, 10), (2, 20), (3, 30); create table quick (id int);"
            "insert into quick values (1)")


@pytest.fixture
def held(pg, start_proxy, tmp_path, ledger):
    proxy = start_proxy(config=config(pg, tmp_path))
    proxy.config_path = next(tmp_path.glob("wireproxy-*.toml"))
    return proxy


def approvals_cli(proxy, *args: str, approver: str = "bob") -> subprocess.CompletedProcess:
    admin = f"127.0.0.1:{proxy.ports('admin')[0]}"     # the config says port 0: ask the proxy
    return subprocess.run([*WIREPROXY, "approvals", *args, "--config", str(proxy.config_path), "--admin", admin],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "WIREPROXY_APPROVER": approver})


class HeldClient:
    """A psycopg session in a thread running one statement; `approval_id()` is what the notice said."""

    def __init__(self, dsn: str, sql: str, *, pipeline: bool = False):
        self.notices: queue.Queue = queue.Queue()
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.add_notice_handler(lambda d: self.notices.put(d.message_primary))
        self.result = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=(sql, pipeline), daemon=True)
        self.thread.start()

    def _run(self, sql: str, pipeline: bool) -> None:
        try:
            if pipeline:
                with self.conn.pipeline():
                    self.conn.execute("select 1")
                    cur = self.conn.execute(sql)
            else:
                cur = self.conn.execute(sql)
            self.result = cur.fetchall() if cur.description else cur.rowcount
        except Exception as exc:
            self.error = exc

    def approval_id(self, timeout: float = 20) -> str:
        while True:
            match = WAITING.fullmatch(self.notices.get(timeout=timeout))
            if match:
                return match.group(1)

    def join(self):
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self


def test_a_held_statement_approved_through_the_cli_runs_and_returns_its_rows(pg, held):
    client = HeldClient(pg.dsn(port=held.port), "select id, amount from ledger order by id")
    approval = client.approval_id()
    run = approvals_cli(held, "list", "--json")
    assert run.returncode == 0, run.stderr
    listed = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(a["id"], a["rule"], a["user"]) for a in listed] == [(approval, "ask-ledger", "postgres")]
    assert "ledger" in listed[0]["statement"]
    # While it waits, nothing of it is on the server.
    activity = pg.psql("select count(*) from pg_stat_activity where query like '%from ledger order by%' "
                       "and pid <> pg_backend_pid()").strip()
    assert activity == "0"
    assert approvals_cli(held, "approve", approval, "--reason", "quarterly audit").returncode == 0
    client.join()
    assert client.error is None and client.result == [(1, 10), (2, 20), (3, 30)]
    # The session goes on as usual.
    assert client.conn.execute("select 42").fetchone() == (42,)
    client.conn.close()


def test_denied_with_a_reason_and_the_session_stays_usable(pg, held):
    client = HeldClient(pg.dsn(port=held.port), "select * from ledger")
    approval = client.approval_id()
    assert approvals_cli(held, "deny", approval, "--reason", "not during the freeze").returncode == 0
    client.join()
    assert isinstance(client.error, psycopg.errors.InsufficientPrivilege)
    assert client.error.diag.message_primary == "denied by bob: not during the freeze"
    assert client.conn.execute("select 1").fetchone() == (1,)
    client.conn.close()


def test_a_request_nobody_decides_times_out(pg, held):
    client = HeldClient(pg.dsn(port=held.port), "select * from quick")
    client.approval_id()
    client.join()
    assert isinstance(client.error, psycopg.errors.InsufficientPrivilege)
    assert client.error.diag.message_primary == "approval timed out"
    client.conn.close()


def test_a_window_grant_lets_the_next_statement_of_the_same_shape_through(pg, held):
    client = HeldClient(pg.dsn(port=held.port), "select * from ledger where id = 1")
    assert approvals_cli(held, "approve", client.approval_id(), "--window", "10m").returncode == 0
    client.join()
    assert client.result == [(1, 10)]
    while not client.notices.empty():          # the reminders sent while the first one waited
        client.notices.get_nowait()
    # The same text modulo constants, same user: no asking.
    assert client.conn.execute("select * from ledger where id = 2").fetchall() == [(2, 20)]
    assert client.notices.empty()
    client.conn.close()


def test_cancel_while_waiting_withdraws_the_request(pg, held):
    client = HeldClient(pg.dsn(port=held.port), "select * from ledger")
    approval = client.approval_id()
    client.conn.cancel_safe()
    client.join()
    assert isinstance(client.error, psycopg.errors.QueryCanceled)
    shown = json.loads(approvals_cli(held, "show", approval, "--json").stdout)
    assert shown["state"] == "withdrawn"
    assert client.conn.execute("select 1").fetchone() == (1,)
    client.conn.close()


def test_a_client_that_vanishes_while_waiting_withdraws_the_request(pg, held):
    client = HeldClient(pg.dsn(port=held.port), "select * from ledger")
    approval = client.approval_id()
    client.conn.pgconn.finish()                 # the socket goes away under the waiting thread
    client.thread.join(30)
    held.wait_for("approval.withdrawn", id=approval)
    assert json.loads(approvals_cli(held, "show", approval, "--json").stdout)["state"] == "withdrawn"


def test_the_requester_cannot_approve_and_a_rule_names_its_approvers(pg, held):
    client = HeldClient(pg.dsn(port=held.port), "delete from ledger where id = 3")
    approval = client.approval_id()
    refused = approvals_cli(held, "approve", approval, approver="postgres")
    assert refused.returncode == 1 and "cannot approve" in refused.stderr + refused.stdout
    assert approvals_cli(held, "approve", approval, approver="bob").returncode == 1   # not named
    assert approvals_cli(held, "approve", approval, approver="alice").returncode == 0
    client.join()
    assert client.error is None and client.result == 1
    assert pg.psql("select count(*) from ledger").strip() == "2"
    client.conn.close()


def test_a_pipeline_is_held_and_released_as_one_unit(pg, held):
    client = HeldClient(pg.dsn(port=held.port), "select id from ledger order by id", pipeline=True)
    assert approvals_cli(held, "approve", client.approval_id()).returncode == 0
    client.join()
    assert client.error is None and client.result == [(1,), (2,), (3,)]
    client.conn.close()


def test_approvals_show_in_the_metrics(pg, held):
    client = HeldClient(pg.dsn(port=held.port), "select * from ledger")
    approvals_cli(held, "deny", client.approval_id())
    client.join().conn.close()
    admin = f"http://127.0.0.1:{held.ports('admin')[0]}"
    token = (held.config_path.parent / "wireproxy-admin.token").read_text().strip()
    text = subprocess.run(["curl", "-sS", "-H", f"Authorization: Bearer {token}", f"{admin}/metrics"],
                          capture_output=True, text=True, timeout=30).stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("wireproxy_statements_total", (("decision", "approve"),))] >= 1
    assert samples[("wireproxy_approval_outcomes_total", (("outcome", "denied"),))] >= 1


def test_two_proxies_sharing_the_postgres_store_release_each_others_holds(pg, start_proxy, tmp_path, ledger):
    """A statement held on one wireproxy is approved through the other's admin API."""
    store = (f'store = "postgres"\ndsn = "postgresql://scramuser@127.0.0.1:{pg.port}/postgres"\n'
             f'password_env = "WIREPROXY_APPROVALS_PASSWORD"\ntable = "approvals_two_proxies"\n')
    os.environ["WIREPROXY_APPROVALS_PASSWORD"] = "scram-secret"
    try:
        holding = start_proxy(config=config(pg, tmp_path, store))
        deciding = start_proxy(config=config(pg, tmp_path, store))
    finally:
        del os.environ["WIREPROXY_APPROVALS_PASSWORD"]
    for proxy, number in ((holding, 0), (deciding, 1)):
        proxy.wait_for("approvals.store_connected")
        proxy.config_path = tmp_path / f"wireproxy-{number}.toml"
    client = HeldClient(pg.dsn(port=holding.port), "select id from ledger order by id")
    approval = client.approval_id()
    listed = approvals_cli(deciding, "list", "--json")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [approval]
    assert approvals_cli(deciding, "approve", approval, "--reason", "from the other instance").returncode == 0
    client.join()
    assert client.error is None and client.result == [(1,), (2,), (3,)]
    client.conn.close()


def test_a_new_request_is_posted_to_the_webhook_with_its_statement_masked(pg, start_proxy, tmp_path, ledger):
    import http.server

    received: queue.Queue = queue.Queue()

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "masks.toml").write_text('[[mask]]\nid = "mail"\ndetectors = ["email"]\nstyle = "redact"\n')
        text = config(pg, tmp_path, f'webhook = "http://127.0.0.1:{server.server_port}/hook"\n')
        text = text.replace('rules = ["rules.toml"]', 'rules = ["rules.toml", "masks.toml"]')
        proxy = start_proxy(config=text)
        proxy.config_path = next(tmp_path.glob("wireproxy-*.toml"))
        client = HeldClient(pg.dsn(port=proxy.port),
                            "select * from ledger where amount > 0 -- for auditor@example.com <b>")
        approval = client.approval_id()
        posted = received.get(timeout=20)
        assert posted["id"] == approval and posted["rule"] == "ask-ledger" and posted["user"] == "postgres"
        assert "auditor@example.com" not in posted["statement"] and "<b>" in posted["statement"]
        assert approval in json.dumps(posted["how"] if "how" in posted else posted)
        approvals_cli(proxy, "deny", approval)
        client.join().conn.close()
    finally:
        server.shutdown()


def test_the_session_log_records_who_asked_who_decided_and_why(pg, start_proxy, tmp_path, ledger):
    logs = tmp_path / "sessions"
    proxy = start_proxy(config=config(pg, tmp_path).replace(
        "[admin]", f'[log]\ndir = "{logs}"\n\n[admin]'))
    proxy.config_path = next(tmp_path.glob("wireproxy-*.toml"))
    client = HeldClient(pg.dsn(port=proxy.port), "select * from ledger")
    approval = client.approval_id()
    assert approvals_cli(proxy, "approve", approval, "--reason", "audit 2026-Q4").returncode == 0
    client.join().conn.close()
    proxy.wait_for("connection.close")
    shown = subprocess.run([*WIREPROXY, "sessions", "show", "--config", str(proxy.config_path),
                            _only_session(proxy)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert approval in shown.stdout and "bob" in shown.stdout and "audit 2026-Q4" in shown.stdout
    assert "select * from ledger" in shown.stdout


def _only_session(proxy) -> str:
    (event,) = [e for e in proxy.events if e.get("event") == "connection.close"]
    return event["session"]
