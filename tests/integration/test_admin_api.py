"""The admin API driven by a real HTTP client (httpx) and by the CLI (`python -m wireproxy.cli
approvals ...` as a subprocess), against a broker in this process that holds the requests."""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from wireproxy.admin import AdminApi, ensure_token, serve_admin
from wireproxy.approvals import ApprovalRequest, Broker
from wireproxy.config import ConfigError

WIREPROXY = [sys.executable, "-m", "wireproxy.cli"]
ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Admin:
    url: str
    token: str
    broker: Broker
    config: Path
    token_file: Path

    def client(self, token: str | None = "default") -> httpx.AsyncClient:
        headers = {} if token is None else {"Authorization": f"Bearer {self.token if token == 'default' else token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    async def cli(self, *args: str, env: dict | None = None) -> tuple[int, str, str]:
        done = await trio.run_process([*WIREPROXY, "approvals", *args, "--config", str(self.config)],
                                      capture_stdout=True, capture_stderr=True, check=False, cwd=ROOT,
                                      env={**os.environ, **(env or {})})
        return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.fixture
async def admin(nursery, tmp_path):
    broker = Broker()
    await nursery.start(broker.run)
    token_file = tmp_path / "admin.token"
    token, created = ensure_token(token_file)
    assert created
    sockets = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(serve_admin, sockets, AdminApi(broker, token))
    port = sockets[0].socket.getsockname()[1]
    config = tmp_path / "wireproxy.toml"
    config.write_text(f'[admin]\nlisten = "127.0.0.1:{port}"\ntoken_file = "admin.token"\n')
    return Admin(f"http://127.0.0.1:{port}", token, broker, config, token_file)


def held(user="alice", statement="TRUNCATE audit_log", approvers=(), fingerprint="truncate audit_log"):
    return ApprovalRequest(user, "app", statement, "ask-truncate", approvers, None, fingerprint,
                           session_id="0123abcd", client="127.0.0.1:50000")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_the_token_file_is_private_and_checked(tmp_path):
    path = tmp_path / "sub" / "token"
    token, created = ensure_token(path)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600 and len(token) >= 32
    assert ensure_token(path) == (token, False)                       # kept across restarts
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="open to other users"):
        ensure_token(path)
    path.chmod(0o600)
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="at least 32"):
        ensure_token(path)


async def test_401_without_the_right_token_and_health_without_one(admin):
    async with admin.client(token=None) as anonymous:
        health = await anonymous.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        for path in ("/approvals", "/metrics", "/approvals/ap-x", "/no-such-thing"):
            response = await anonymous.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert (await anonymous.post("/approvals/ap-x/approve", json={"approver": "bob"})).status_code == 401
        assert (await anonymous.get("/approvals", headers={"Authorization": admin.token})).status_code == 401
    async with admin.client(token="x" * 43) as wrong:
        assert (await wrong.get("/approvals")).status_code == 401
    async with admin.client(token=admin.token[:-1]) as almost:
        assert (await almost.get("/approvals")).status_code == 401


async def test_list_show_approve_through_http(admin):
    events = []
    ticket = await admin.broker.submit(held(), on_event=events.append)
    async with admin.client() as http:
        listed = (await http.get("/approvals")).json()["approvals"]
        assert [(a["id"], a["user"], a["rule"], a["statement"], a["state"]) for a in listed] == \
            [(ticket.id, "alice", "ask-truncate", "TRUNCATE audit_log", "pending")]
        one = (await http.get(f"/approvals/{ticket.id}")).json()
        assert one["client"] == "127.0.0.1:50000" and one["session"] == "0123abcd"

        selfish = await http.post(f"/approvals/{ticket.id}/approve", json={"approver": "alice"})
        assert selfish.status_code == 403 and selfish.json()["error"]["code"] == "forbidden"
        assert "cannot approve" in selfish.json()["error"]["message"]
        assert not ticket.done

        approved = await http.post(f"/approvals/{ticket.id}/approve",
                                   json={"approver": "bob", "reason": "INC-7", "window": "15m"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "approved" and approved.json()["grant"] == "window"
        outcome = await ticket.wait()
        assert outcome.approved and outcome.approver == "bob" and outcome.reason == "INC-7"
        assert admin.broker.window_grant("alice", "truncate audit_log") is not None

        again = await http.post(f"/approvals/{ticket.id}/deny", json={"approver": "carol"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"
        assert (await http.get("/approvals")).json()["approvals"] == []
        everything = (await http.get("/approvals", params={"state": "all"})).json()["approvals"]
        assert [a["state"] for a in everything] == ["approved"]
        assert admin.token not in json.dumps(everything)
    assert [e["event"] for e in events] == ["requested", "approved"]


async def test_deny_through_http(admin):
    ticket = await admin.broker.submit(held(approvers=("bob",)))
    async with admin.client() as http:
        stranger = await http.post(f"/approvals/{ticket.id}/deny", json={"approver": "mallory"})
        assert stranger.status_code == 403
        denied = await http.post(f"/approvals/{ticket.id}/deny", json={"approver": "bob", "reason": "use a view"})
        assert denied.status_code == 200
    assert (await ticket.wait()).message == "denied by bob: use a view"


@pytest.mark.parametrize("body, problem", [
    (b"not json", "JSON object"), (b"[1, 2]", "JSON object"), (b"", "JSON object"),
    (b'{"approver": "bob", "sudo": true}', "unknown field 'sudo'"),
    (b'{"reason": "why not"}', "approver must be"), (b'{"approver": 7}', "approver must be"),
    (b'{"approver": "bob", "window": "forever"}', "not a duration"),
    (b'{"approver": "bob", "window": "30d"}', "longer than"),
    (b'{"approver": "bob", "reason": 5}', "reason must be"),
])
async def test_bad_bodies_are_400_and_change_nothing(admin, body, problem):
    ticket = await admin.broker.submit(held())
    async with admin.client() as http:
        response = await http.post(f"/approvals/{ticket.id}/approve", content=body,
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and problem in response.json()["error"]["message"]
    assert not ticket.done and (await admin.broker.get(ticket.id)).pending


async def test_unknown_ids_methods_and_oversized_bodies(admin):
    async with admin.client() as http:
        assert (await http.get("/approvals/ap-doesnotexist")).status_code == 404
        missing = await http.post("/approvals/ap-doesnotexist/approve", json={"approver": "bob"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert (await http.get("/approvals/../../etc/passwd")).status_code == 404
        wrong = await http.delete("/approvals")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
        assert (await http.get("/approvals/ap-x/approve")).status_code == 405
        huge = await http.post("/approvals/ap-x/approve", content=b"{" + b" " * 70_000 + b"}")
        assert huge.status_code == 413
        assert (await http.get("/healthz")).status_code == 200        # the listener goes on


async def test_a_malformed_request_gets_400_and_the_server_goes_on(admin):
    port = int(admin.url.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GARBAGE\r\n\r\n")
    reply = b""
    while chunk := await stream.receive_some(4096):
        reply += chunk
    await stream.aclose()
    assert reply.startswith(b"HTTP/1.1 400")
    async with admin.client() as http:
        assert (await http.get("/approvals")).status_code == 200


async def test_metrics_parse_and_move_with_the_broker(admin):
    async with admin.client() as http:
        before = samples((await http.get("/metrics")).text)
        ticket = await admin.broker.submit(held())
        during = samples((await http.get("/metrics")).text)
        await http.post(f"/approvals/{ticket.id}/deny", json={"approver": "bob"})
        await ticket.wait()
        after_response = await http.get("/metrics")
    assert after_response.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = samples(after_response.text)
    requests = ("wireproxy_approval_requests_total", (("source", "postgres"),))
    pending = ("wireproxy_approvals_pending", ())
    denied = ("wireproxy_approval_outcomes_total", (("outcome", "denied"),))
    assert during[requests] == before[requests] + 1 and after[requests] == during[requests]
    assert during[pending] == before[pending] + 1 and after[pending] == before[pending]
    assert after[denied] == before[denied] + 1
    assert ("wireproxy_statements_total", (("decision", "block"),)) in after
    assert ("wireproxy_sessions_open", (("protocol", "postgres"),)) in after
    assert after[("wireproxy_admin_requests_total", (("code", "200"),))] >= 3


async def test_the_cli_lists_shows_approves_and_denies(admin):
    first = await admin.broker.submit(held(statement="TRUNCATE audit_log\n-- during INC-7"))
    second = await admin.broker.submit(held(user="dave", statement="DELETE FROM t WHERE id = 1"))

    code, out, err = await admin.cli("list", "--json")
    assert code == 0, err
    items = [json.loads(line) for line in out.splitlines()]
    assert [(i["id"], i["user"], i["rule"], i["statement"]) for i in items] == [
        (first.id, "alice", "ask-truncate", "TRUNCATE audit_log\n-- during INC-7"),
        (second.id, "dave", "ask-truncate", "DELETE FROM t WHERE id = 1")]

    code, out, err = await admin.cli("list")
    assert code == 0 and out.splitlines()[0].split()[:4] == ["ID", "STATE", "WAITING", "USER"]
    assert first.id in out and "TRUNCATE audit_log -- during INC-7" in out

    code, out, err = await admin.cli("show", first.id)
    assert code == 0 and "    TRUNCATE audit_log\n    -- during INC-7\n" in out
    assert f"wireproxy approvals approve {first.id}" in out and "anyone but alice" in out

    code, out, err = await admin.cli("approve", first.id, "--as", "alice")
    assert code == 1 and "alice asked for this approval and cannot approve it" in err
    assert not first.done

    code, out, err = await admin.cli("approve", first.id, "--window", "15m", "--reason", "INC-7",
                                     env={"WIREPROXY_APPROVER": "bob"})
    assert code == 0, err
    assert out.startswith(f"approved {first.id} by bob: alice may run statements like it for 15m")
    assert (await first.wait()).approved

    code, out, err = await admin.cli("deny", second.id, "--as", "carol", "--reason", "not today")
    assert code == 0 and out.startswith(f"denied {second.id} by carol")
    assert (await second.wait()).message == "denied by carol: not today"

    code, out, err = await admin.cli("approve", second.id, "--as", "bob")
    assert code == 1 and "already denied" in err
    code, out, err = await admin.cli("show", "ap-nothing")
    assert code == 1 and "no approval request ap-nothing" in err
    code, out, err = await admin.cli("list")
    assert code == 0 and out == "" and "no pending approvals" in err
    code, out, err = await admin.cli("list", "--all", "--json")
    assert sorted(json.loads(line)["state"] for line in out.splitlines()) == ["approved", "denied"]


async def test_the_cli_escapes_control_characters_in_statements(admin):
    await admin.broker.submit(held(statement="SELECT 1 \x1b[2J\x1b[31mAPPROVED BY SECURITY\x07"))
    code, out, err = await admin.cli("list")
    assert code == 0 and "\x1b" not in out and "\\x1b[2J" in out
    code, out, err = await admin.cli("list", "--json")
    assert "\x1b" not in out                                   # JSON escapes it too


async def test_the_cli_without_a_usable_token_or_api(admin, tmp_path):
    code, out, err = await admin.cli("list", "--token-file", str(tmp_path / "missing"))
    assert code == 2 and "admin token file not found" in err
    wrong = tmp_path / "wrong.token"
    wrong.write_text("w" * 43 + "\n")
    code, out, err = await admin.cli("list", "--token-file", str(wrong))
    assert code == 2 and "refused the token" in err and "w" * 43 not in err
    from pgcluster import free_port
    code, out, err = await admin.cli("list", "--admin", f"127.0.0.1:{free_port()}")
    assert code == 2 and "cannot reach the admin API" in err
    code, out, err = await admin.cli("approve", "ap x;rm")
    assert code == 2 and "not an approval id" in err
