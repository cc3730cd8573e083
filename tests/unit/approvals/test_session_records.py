"""The broker's events, written by the real session-log writer through the recorder a session
holds, read back by `wireproxy sessions show`: who asked, who decided, when and why."""

from __future__ import annotations

import trio

from wireproxy.approvals import ApprovalRequest, Broker
from wireproxy.cli.sessions import main
from wireproxy.sessionlog import SessionLog, init_keys


async def test_sessions_show_lays_out_every_approval_event(tmp_path, capsys):
    key_file = tmp_path / "wireproxy.key"
    init_keys(key_file)
    log_dir = tmp_path / "sessions"
    session_log = SessionLog(log_dir, key_file, flush_interval=0.01)
    async with trio.open_nursery() as services:
        await services.start(session_log.run)
        broker = Broker()
        await services.start(broker.run)
        recorder = session_log.open_session({"user": "alice", "database": "billing", "client_addr": "127.0.0.1:5"})

        def ask(statement: str, timeout=None):
            return broker.submit(ApprovalRequest("alice", "billing", statement, "ask-writes", ("bob", "group:dba"),
                                                 timeout, statement.lower(), session_id=recorder.id),
                                 on_event=recorder.record)

        approved = await ask("UPDATE invoices SET paid = true\nWHERE id = 7")
        await broker.approve(approved.id, "bob", "INC-7", window="15m")
        recorder.record({"sql": "UPDATE invoices SET paid = true\nWHERE id = 7", "protocol": "simple",
                         "decision": "approve", "rules": ["ask-writes"],
                         "approval": {"id": approved.id, "by": "bob", "outcome": "approved"}, "tag": "UPDATE 1"})
        grant = broker.window_grant("alice", "update invoices set paid = true\nwhere id = 7")
        recorder.record(grant.record())
        denied = await ask("DELETE FROM invoices")
        await broker.deny(denied.id, "bob", "use the archive job")
        late = await ask("TRUNCATE invoices", timeout=0.05)
        await late.wait()
        gone = await ask("DROP VIEW v")
        gone.withdraw()
        await trio.testing.wait_all_tasks_blocked()
        recorder.close()
        await session_log.flush()
        services.cancel_scope.cancel()

    code = main(["sessions", "show", recorder.id, "--log-dir", str(log_dir), "--key-file", str(key_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"[approval requested]  {approved.id}  rule ask-writes" in out
    assert "asked by alice; approvers: bob, group:dba; times out" in out and "(300 s)" in out
    assert "statement: UPDATE invoices SET paid = true\n" in out and "           WHERE id = 7" in out
    assert f"[approval approved]  {approved.id}  by bob (window 900 s, until " in out and "): INC-7" in out
    assert f"approval {approved.id} approved by bob" in out                   # on the statement itself
    assert f"[approval window]  {approved.id}  granted by bob for rule ask-writes, until" in out
    assert f"[approval denied]  {denied.id}  by bob: use the archive job" in out
    assert f"[approval timed out]  {late.id}" in out
    assert f"[approval withdrawn]  {gone.id}: the client cancelled or went away" in out
    order = [out.index(s) for s in (f"requested]  {approved.id}", f"approved]  {approved.id}",
                                     f"requested]  {denied.id}", f"denied]  {denied.id}",
                                     f"timed out]  {late.id}", f"withdrawn]  {gone.id}")]
    assert order == sorted(order)
