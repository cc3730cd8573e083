"""The writer service: round trips through real files, flushing, failure modes, crash, retention."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import trio

from sessionlog_helpers import statements, write_log
from wireproxy.sessionlog import (INTACT, OPEN, SUFFIX, TRUNCATED, Keyring, LogUnavailable, SessionLog,
                                  apply_retention, log_files, read_session, rotate_keys)
from wireproxy.sessionlog import files as files_module

HEADER = {"user": "alice", "database": "shop", "client_addr": "127.0.0.1:50000", "application_name": "psql",
          "upstream": "127.0.0.1:5432"}


async def _start(nursery: trio.Nursery, log_dir: Path, key_file: Path, **kw) -> SessionLog:
    log = SessionLog(log_dir, key_file, **kw)
    await nursery.start(log.run)
    return log


async def test_round_trip_through_the_writer(log_dir, key_file, keyring):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file)
        rec = log.open_session(HEADER)
        entries = statements(4)
        for entry in entries:
            rec.record(entry)
        rec.close({"statements": 4})
        await log.flush()
        nursery.cancel_scope.cancel()
    read = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
    assert read.status == INTACT
    assert read.header["user"] == "alice" and read.header["session"] == rec.id
    assert read.header["key_id"] == log.key_id and read.header["proxy_version"]
    assert read.header["started"].endswith("Z")
    assert [r["sql"] for r in read.records] == [e["sql"] for e in entries]
    assert all(r["ts"].endswith("Z") for r in read.records)
    assert read.end["summary"] == {"statements": 4} and read.end["reason"] == "closed"
    assert oct(os.stat(log_dir / f"{rec.id}{SUFFIX}").st_mode & 0o777) == "0o600"


async def test_marker_appears_nowhere_under_the_log_dir(log_dir, key_file, keyring):
    marker = "MRK-5f3b2a91-secret"
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file, max_result_bytes=10_000)
        rec = log.open_session({**HEADER, "user": marker, "application_name": marker})
        rec.record({"sql": f"SELECT '{marker}'", "params": [marker], "result_rows": [[marker]]})
        rec.close()
        await log.flush()
        nursery.cancel_scope.cancel()
    blobs = b"".join(p.read_bytes() for p in log_dir.rglob("*") if p.is_file())
    assert blobs and marker.encode() not in blobs and marker.encode("utf-16-le") not in blobs
    assert marker.encode().hex().encode() not in blobs
    read = read_session(log_files(log_dir)[0], keyring)
    assert read.records[0]["result_rows"] == [[marker]] and read.header["user"] == marker


async def test_records_are_flushed_without_being_asked(log_dir, key_file, keyring):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file, flush_interval=0.05)
        rec = log.open_session(HEADER)
        for entry in statements(3):
            rec.record(entry)
        path = log_dir / f"{rec.id}{SUFFIX}"
        with trio.fail_after(5):
            while not (path.exists() and read_session(path, keyring).count == 3):
                await trio.sleep(0.02)
        read = read_session(path, keyring)
        assert read.status == OPEN  # the writer holds the lock: not a crash
        nursery.cancel_scope.cancel()


async def test_many_sessions_interleaved(log_dir, key_file, keyring):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file)
        recs = [log.open_session({**HEADER, "user": f"u{i}"}) for i in range(20)]
        for n in range(30):
            for i, rec in enumerate(recs):
                rec.record({"sql": f"SELECT {i}, {n}"})
            if n % 7 == 0:
                await trio.sleep(0)
        for rec in recs:
            rec.close()
        await log.flush()
        assert log.open_sessions == 0
        nursery.cancel_scope.cancel()
    for i, rec in enumerate(recs):
        read = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
        assert read.status == INTACT and read.header["user"] == f"u{i}"
        assert [r["sql"] for r in read.records] == [f"SELECT {i}, {n}" for n in range(30)]


async def test_shutdown_seals_sessions_still_open(log_dir, key_file, keyring):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file)
        rec = log.open_session(HEADER)
        rec.record({"sql": "SELECT 1"})
        nursery.cancel_scope.cancel()
    read = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
    assert read.status == INTACT and read.end["reason"] == "shutdown" and read.count == 1
    rec.record({"sql": "late"})  # after the writer stopped: ignored, no error
    with pytest.raises(LogUnavailable, match="stopped"):
        log.open_session(HEADER)


async def test_record_after_close_and_double_close_are_ignored(log_dir, key_file, keyring):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file)
        rec = log.open_session(HEADER)
        rec.record({"sql": "SELECT 1"})
        rec.close()
        rec.record({"sql": "SELECT 2"})
        rec.close({"again": True})
        await log.flush()
        nursery.cancel_scope.cancel()
    read = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
    assert read.status == INTACT and read.count == 1 and "summary" not in read.end


async def test_result_rows_are_capped_per_session(log_dir, key_file, keyring):
    rows = [[i, "x" * 40] for i in range(10)]  # about 49 bytes each
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file, max_result_bytes=200)
        rec = log.open_session(HEADER)
        assert rec.wants_results
        rec.record({"sql": "SELECT a", "result_rows": rows[:2]})
        rec.record({"sql": "SELECT b", "result_rows": rows})
        rec.record({"sql": "SELECT c", "result_rows": rows[:1]})
        await log.flush()
        assert not rec.wants_results
        rec.close()
        await log.flush()
        nursery.cancel_scope.cancel()
    read = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
    a, b, c = read.records
    assert a["result_rows"] == rows[:2]
    assert b["result_rows"] == rows[:2] and b["result_rows_omitted"] == 8
    assert "result_rows" not in c and c["result_rows_omitted"] == 1
    assert read.end["results_truncated"] is True and read.end["result_bytes"] <= 200


async def test_results_off_by_default(log_dir, key_file, keyring):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file)
        rec = log.open_session(HEADER)
        assert not rec.wants_results
        rec.record({"sql": "SELECT a", "result_rows": [[1]]})
        rec.close()
        await log.flush()
        nursery.cancel_scope.cancel()
    (a,) = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring).records
    assert "result_rows" not in a and a["result_rows_omitted"] == 1


async def test_backpressure_never_loses_records(log_dir, key_file, keyring):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file, max_pending=10, flush_interval=10)
        rec = log.open_session(HEADER)
        for i in range(50):
            rec.record({"sql": f"SELECT {i}"})
        assert rec.congested
        with trio.fail_after(5):
            await rec.wait_room()
        assert not rec.congested
        await rec.wait_room()  # not congested: returns at once
        rec.close()
        await log.flush()
        nursery.cancel_scope.cancel()
    read = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
    assert read.status == INTACT and read.count == 50


async def test_rotated_key_is_picked_up_and_old_logs_stay_readable(log_dir, key_file):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file, flush_interval=0.02)
        log.key_check_interval = 0.0
        before = log.open_session(HEADER)
        before.record({"sql": "SELECT 'old key'"})
        before.close()
        await log.flush()
        old_id = log.key_id
        rotation = rotate_keys(key_file)
        with trio.fail_after(5):
            while log.key_id == old_id:
                await trio.sleep(0.02)
        after = log.open_session(HEADER)
        after.record({"sql": "SELECT 'new key'"})
        after.close()
        await log.flush()
        nursery.cancel_scope.cancel()
    assert rotation.previous_key_id == old_id and log.key_id == rotation.key_id
    keyring = Keyring.load(key_file)  # the current key and key_file.old/*
    old = read_session(log_dir / f"{before.id}{SUFFIX}", keyring)
    new = read_session(log_dir / f"{after.id}{SUFFIX}", keyring)
    assert old.status == new.status == INTACT
    assert old.key_id == old_id and new.key_id == rotation.key_id
    assert old.records[0]["sql"] == "SELECT 'old key'" and new.records[0]["sql"] == "SELECT 'new key'"


# --- failure -----------------------------------------------------------------------------------


async def test_fail_closed_when_the_log_dir_cannot_be_used(tmp_path, key_file):
    not_a_dir = tmp_path / "occupied"
    not_a_dir.write_text("a file where the log dir should be")
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, not_a_dir, key_file)
        assert log.failed and "not a directory" in log.failed
        with pytest.raises(LogUnavailable, match="session log unavailable: .*not a directory"):
            log.open_session(HEADER)
        nursery.cancel_scope.cancel()


async def test_fail_open_goes_on_unrecorded(tmp_path, key_file, caplog):
    not_a_dir = tmp_path / "occupied"
    not_a_dir.write_text("x")
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, not_a_dir / "sub", key_file, fail_open=True)
        assert log.failed
        assert any("FAIL-OPEN" in r.getMessage() for r in caplog.records)
        rec = log.open_session(HEADER)
        rec.record({"sql": "SELECT 1"})
        await log.flush()
        assert rec.failed is None  # the relay goes on
        nursery.cancel_scope.cancel()


async def test_write_error_mid_session_fails_closed_then_recovers(log_dir, key_file, keyring, monkeypatch):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file, retry_interval=0.05, flush_interval=0.02)
        rec = log.open_session(HEADER)
        rec.record({"sql": "SELECT 'before'"})
        await log.flush()
        assert rec.failed is None

        real_write_all = files_module._write_all

        def disk_full(fd, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(files_module, "_write_all", disk_full)
        rec.record({"sql": "SELECT 'lost'"})
        await log.flush()
        assert rec.failed and "No space left on device" in rec.failed
        assert log.failed
        with pytest.raises(LogUnavailable, match="No space left"):
            log.open_session(HEADER)

        monkeypatch.setattr(files_module, "_write_all", real_write_all)
        with trio.fail_after(5):
            while log.failed:
                await trio.sleep(0.02)
        assert rec.failed  # its log has a hole: this session stays stopped
        fresh = log.open_session(HEADER)
        fresh.record({"sql": "SELECT 'after'"})
        fresh.close()
        rec.close()
        await log.flush()
        nursery.cancel_scope.cancel()
    broken = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
    assert broken.status == TRUNCATED and [r["sql"] for r in broken.records] == ["SELECT 'before'"]
    assert read_session(log_dir / f"{fresh.id}{SUFFIX}", keyring).status == INTACT


_REPO = Path(__file__).resolve().parents[3]


def _child(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], cwd=_REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_file_size_limit_is_a_real_write_failure(log_dir, key_file, keyring):
    """RLIMIT_FSIZE makes the kernel refuse writes past a size: a disk-full without root."""
    child = _child("""
        import json, resource, signal, sys, trio
        from wireproxy.sessionlog import LogUnavailable, SessionLog
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
        async def main():
            log = SessionLog(sys.argv[1], sys.argv[2], retry_interval=60)
            async with trio.open_nursery() as nursery:
                await nursery.start(log.run)
                rec = log.open_session({"user": "alice"})
                written = 0
                while rec.failed is None and written < 100:
                    rec.record({"sql": "SELECT " + "x" * 500, "n": written})
                    written += 1
                    await log.flush()
                try:
                    log.open_session({"user": "bob"})
                    refused = None
                except LogUnavailable as exc:
                    refused = str(exc)
                print(json.dumps({"id": rec.id, "failed": rec.failed, "refused": refused, "written": written}))
                nursery.cancel_scope.cancel()
        trio.run(main)
    """, str(log_dir), str(key_file))
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    result = json.loads(out)
    assert result["failed"] and "too large" in result["failed"].lower()
    assert result["refused"] and result["written"] < 100
    read = read_session(log_dir / f"{result['id']}{SUFFIX}", keyring)
    assert read.status == TRUNCATED and 0 < read.count < result["written"]
    assert [r["n"] for r in read.records] == list(range(read.count))


def test_kill_9_mid_session_leaves_a_truncated_readable_log(log_dir, key_file, keyring):
    child = _child("""
        import sys, trio
        from wireproxy.sessionlog import SessionLog
        async def main():
            log = SessionLog(sys.argv[1], sys.argv[2], flush_interval=0.05)
            async with trio.open_nursery() as nursery:
                await nursery.start(log.run)
                rec = log.open_session({"user": "victim"})
                for i in range(5):
                    rec.record({"sql": f"SELECT {i}"})
                await log.flush()
                print(rec.id, flush=True)
                rec.record({"sql": "SELECT 5"})      # no flush asked: the writer's timer does it
                await trio.sleep(0.5)
                print("timer", flush=True)
                rec.record({"sql": "SELECT 'maybe lost'"})
                await trio.sleep_forever()
        trio.run(main)
    """, str(log_dir), str(key_file))
    try:
        sid = child.stdout.readline().strip()
        assert child.stdout.readline().strip() == "timer", child.stderr.read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    read = read_session(log_dir / f"{sid}{SUFFIX}", keyring)
    assert read.status == TRUNCATED and read.exit_code == 3
    assert read.count >= 6 and "no final record" in read.problem
    assert [r["sql"] for r in read.records][:6] == [f"SELECT {i}" for i in range(6)]
    assert read.header["user"] == "victim"


# --- retention ---------------------------------------------------------------------------------


def _aged(path: Path, seconds_ago: float) -> Path:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))
    return path


def test_retention_by_age_and_size(log_dir, key_file):
    old = _aged(write_log(log_dir, key_file, statements(3)), 10 * 86400)
    middle = _aged(write_log(log_dir, key_file, statements(3)), 5 * 86400)
    new = _aged(write_log(log_dir, key_file, statements(3)), 60)
    other = log_dir / "notes.txt"
    other.write_text("not a log")
    _aged(other, 100 * 86400)
    assert apply_retention(log_dir) == []
    assert apply_retention(log_dir, max_age=7 * 86400) == [old]
    size = new.stat().st_size
    assert apply_retention(log_dir, max_bytes=size + 1) == [middle]
    assert log_files(log_dir) == [new] and other.exists()
    assert apply_retention(log_dir, max_bytes=0, keep=[new]) == []


async def test_retention_never_deletes_an_open_session(log_dir, key_file):
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file)
        rec = log.open_session(HEADER)
        rec.record({"sql": "SELECT 1"})
        await log.flush()
        path = log_dir / f"{rec.id}{SUFFIX}"
        _aged(path, 30 * 86400)
        # Not passed in `keep`: the writer's lock alone protects it (another process sharing the dir).
        assert apply_retention(log_dir, max_age=1, max_bytes=0) == []
        assert path.exists()
        rec.close()
        await log.flush()
        _aged(path, 30 * 86400)
        assert apply_retention(log_dir, max_age=1) == [path]
        nursery.cancel_scope.cancel()


async def test_writer_runs_retention(log_dir, key_file):
    stale = _aged(write_log(log_dir, key_file, statements(1)), 40 * 86400)
    async with trio.open_nursery() as nursery:
        await _start(nursery, log_dir, key_file, retention_max_age=30 * 86400)
        assert not stale.exists()
        nursery.cancel_scope.cancel()


# --- the batched encode path ---------------------------------------------------------------------


async def test_records_queued_while_a_cycle_runs_are_written_once_and_counted(log_dir, key_file, keyring):
    """The cycle yields (after each new session's key agreement, and every _SLICE records). What
    the relay queues meanwhile, even for a session the cycle has not reached yet, goes into the
    next cycle: written once, counted once, and flush() returns."""
    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file, flush_interval=3600)
        recs = [log.open_session({**HEADER, "user": f"u{i}"}) for i in range(8)]
        sent = {rec.id: 0 for rec in recs}

        def send(rec):
            rec.record({"sql": f"SELECT {sent[rec.id]}"})
            sent[rec.id] += 1

        for rec in recs:
            send(rec)                # every session has a header and a record queued
        last = recs[-1]

        async def relay():
            for _ in range(6):       # while the cycle works through the sessions before `last`
                send(last)
                await trio.sleep(0)

        async with trio.open_nursery() as inner:
            inner.start_soon(log.flush)
            inner.start_soon(relay)
        with trio.fail_after(5):
            await log.flush()
        assert log.pending == 0 and not log.congested
        assert log.stats["written"] == log.stats["queued"]
        for rec in recs:
            rec.close()
        with trio.fail_after(5):
            await log.flush()
        nursery.cancel_scope.cancel()
    for rec in recs:
        read = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
        assert read.status == INTACT and read.count == sent[rec.id]
        assert [r["sql"] for r in read.records] == [f"SELECT {n}" for n in range(sent[rec.id])]
    assert sent[last.id] == 7


async def test_a_record_that_cannot_be_encoded_is_skipped_not_fatal(log_dir, key_file, keyring, caplog):
    class Unprintable:
        def __str__(self):
            raise RuntimeError("no text for you")

    async with trio.open_nursery() as nursery:
        log = await _start(nursery, log_dir, key_file)
        rec = log.open_session(HEADER)
        rec.record({"sql": "SELECT 1"})
        rec.record(None)  # type: ignore[arg-type]  # not a dict: a bug in the caller
        rec.record({"sql": "SELECT 2", "odd": Unprintable()})
        rec.record({"sql": "SELECT 3", "seq": 99, "ts": "mine"})  # the log's own keys win
        rec.close()
        await log.flush()
        nursery.cancel_scope.cancel()
    assert any("cannot encode" in r.getMessage() for r in caplog.records)
    read = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
    assert read.status == INTACT and read.count == 3
    one, two, three = read.records
    assert [r["seq"] for r in read.records] == [1, 2, 3]
    assert one["sql"] == "SELECT 1"
    assert two["sql"] == "SELECT 2" and "no text for you" in two["unserialisable"]
    assert three["sql"] == "SELECT 3" and three["ts"] != "mine"
