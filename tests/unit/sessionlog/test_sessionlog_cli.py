"""`wireproxy sessions ...` and `wireproxy keys ...`, through wireproxy.cli.sessions.main."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessionlog_helpers import frame_spans, statements, write_log
from wireproxy.sessionlog import init_keys
from wireproxy.cli.sessions import main, parse_since

BLOCKED = {"sql": "DROP TABLE users", "protocol": "simple", "decision": "block", "rules": ["no-drop"],
           "error": {"code": "42501", "message": "blocked by wireproxy rule no-drop"}, "duration_ms": 0.05}
APPROVED = {"sql": "DELETE FROM orders", "protocol": "extended", "params": ["***"], "decision": "approve",
            "rules": ["approve-delete"], "approval": {"id": "ap-1", "by": "bob", "outcome": "approved"},
            "tag": "DELETE 3", "rows": 3, "duration_ms": 812.5}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def logs(log_dir, key_file):
    """Three sessions: alice (intact, two hours ago), bob (intact, now), carol (crashed)."""
    alice = write_log(log_dir, key_file, statements(2) + [BLOCKED, APPROVED], started=time.time() - 7200)
    bob = write_log(log_dir, key_file, statements(1), header={"user": "bob", "database": "hr"})
    carol = write_log(log_dir, key_file, statements(3), header={"user": "carol"}, end=False)
    return {"alice": alice, "bob": bob, "carol": carol}


def _paths(log_dir, key_file):
    return ["--log-dir", log_dir, "--key-file", key_file]


def test_list_text_and_json(capsys, logs, log_dir, key_file):
    code, out, err = run(capsys, "sessions", "list", *_paths(log_dir, key_file))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STARTED", "USER", "DATABASE", "CLIENT", "STATEMENTS", "STATE"]
    assert [line.split()[0] for line in lines[1:]] == [p.stem for p in logs.values()]
    assert "truncated" in lines[3]

    code, out, _ = run(capsys, "sessions", "list", "--json", *_paths(log_dir, key_file))
    items = [json.loads(line) for line in out.splitlines()]
    assert [i["user"] for i in items] == ["alice", "bob", "carol"]
    assert [i["statements"] for i in items] == [4, 1, 3]
    assert [i["status"] for i in items] == ["intact", "intact", "truncated"]
    assert all({"id", "user", "database", "started", "statements"} <= set(i) for i in items)
    assert items[1]["database"] == "hr"


def test_list_filters(capsys, logs, log_dir, key_file):
    _, out, _ = run(capsys, "sessions", "list", "--json", "--user", "bob", *_paths(log_dir, key_file))
    assert [json.loads(line)["user"] for line in out.splitlines()] == ["bob"]
    _, out, _ = run(capsys, "sessions", "list", "--json", "--since", "1h", *_paths(log_dir, key_file))
    assert [json.loads(line)["user"] for line in out.splitlines()] == ["bob", "carol"]


def test_show_transcript(capsys, logs, log_dir, key_file):
    code, out, _ = run(capsys, "sessions", "show", logs["alice"].stem[-8:], *_paths(log_dir, key_file))
    assert code == 0
    assert f"session {logs['alice'].stem}" in out and "user alice" in out and "database shop" in out
    order = [out.index(s) for s in ("SELECT 0", "SELECT 1", "DROP TABLE users", "DELETE FROM orders")]
    assert order == sorted(order)
    assert "[block no-drop]" in out and "error 42501: blocked by wireproxy rule no-drop" in out
    assert "approval ap-1 approved by bob" in out and "DELETE 3 · 3 rows" in out
    assert "#4" in out and "log intact" in out


def test_show_json(capsys, logs, log_dir, key_file):
    code, out, _ = run(capsys, "sessions", "show", logs["alice"].stem, "--json", *_paths(log_dir, key_file))
    doc = json.loads(out)
    assert code == 0 and doc["status"] == "intact" and doc["header"]["user"] == "alice"
    assert [r["sql"] for r in doc["records"]][2:] == ["DROP TABLE users", "DELETE FROM orders"]
    assert doc["records"][2]["rules"] == ["no-drop"]


def test_show_truncated_session(capsys, logs, log_dir, key_file):
    code, out, err = run(capsys, "sessions", "show", logs["carol"].stem, *_paths(log_dir, key_file))
    assert code == 3 and "SELECT 2" in out and "truncated" in err


def test_verify_exit_codes(capsys, logs, log_dir, key_file):
    paths = _paths(log_dir, key_file)
    assert run(capsys, "sessions", "verify", logs["alice"].stem, *paths)[0] == 0
    code, out, _ = run(capsys, "sessions", "verify", logs["carol"].stem, *paths)
    assert code == 3 and "truncated: 3 records intact" in out
    code, out, _ = run(capsys, "sessions", "verify", *paths)  # all: one truncated
    assert code == 3 and "3 sessions" in out

    data = bytearray(logs["bob"].read_bytes())
    data[frame_spans(bytes(data))[1][0] + 30] ^= 1
    logs["bob"].write_bytes(bytes(data))
    code, out, _ = run(capsys, "sessions", "verify", logs["bob"].stem, *paths)
    assert code == 1 and "TAMPERED" in out and "record 1" in out
    code, out, _ = run(capsys, "sessions", "verify", "--json", *paths)  # all: tampered wins
    assert code == 1
    by_id = {item["id"]: item for item in map(json.loads, out.splitlines())}
    assert by_id[logs["bob"].stem]["status"] == "tampered" and by_id[logs["bob"].stem]["bad_record"] == 1
    assert by_id[logs["alice"].stem]["exit_code"] == 0


def test_verify_with_the_wrong_key(capsys, logs, log_dir, tmp_path):
    stranger = tmp_path / "stranger.key"
    init_keys(stranger)
    code, out, err = run(capsys, "sessions", "verify", logs["alice"].stem, *_paths(log_dir, stranger))
    assert code == 2 and "wrong private key" in out
    code, out, err = run(capsys, "sessions", "show", logs["alice"].stem, *_paths(log_dir, stranger))
    assert code == 2 and out == "" and "wrong private key" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_export_jsonl(capsys, logs, log_dir, key_file, tmp_path):
    code, out, _ = run(capsys, "sessions", "export", "--format", "jsonl", *_paths(log_dir, key_file))
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    alice = [e for e in events if e["session_id"] == logs["alice"].stem]
    assert [e["event"] for e in alice] == ["session_start"] + ["statement"] * 4 + ["session_end"]
    assert all(e["user"] == "alice" for e in alice) and alice[-1]["integrity"] == "intact"
    assert alice[3]["rules"] == ["no-drop"]
    carol = [e for e in events if e["session_id"] == logs["carol"].stem]
    assert [e["event"] for e in carol] == ["session_start"] + ["statement"] * 3 + ["integrity"]
    assert carol[-1]["integrity"] == "truncated" and carol[-1]["records_intact"] == 3

    target = tmp_path / "out.jsonl"
    os.utime(logs["alice"], (time.time() - 7200, time.time() - 7200))
    code, _, _ = run(capsys, "sessions", "export", "--since", "1h", "-o", target, *_paths(log_dir, key_file))
    users = {json.loads(line)["user"] for line in target.read_text().splitlines()}
    assert code == 0 and users == {"bob", "carol"}


def test_config_file_paths_are_relative_to_it(capsys, logs, log_dir, key_file, tmp_path):
    config = tmp_path / "etc" / "wireproxy.toml"
    config.parent.mkdir()
    config.write_text(f'[log]\ndir = "../{log_dir.name}"\nkey_file = "../keys/{key_file.name}"\n')
    code, out, _ = run(capsys, "sessions", "list", "--json", "--config", config)
    assert code == 0 and len(out.splitlines()) == 3
    code, out, _ = run(capsys, "sessions", "list", "--json", "--config", config, "--user", "bob")
    assert code == 0 and len(out.splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["sessions", "list", "--since", "last tuesday"], "--since 'last tuesday'"),
    (["sessions", "show", "ffffffff"], "no session ffffffff"),
    (["sessions", "show", "01"], "matches 3 sessions"),
    (["sessions", "list", "--log-dir", "/nonexistent/dir"], "no such log directory"),
    (["sessions", "list", "--key-file", "/nonexistent/key"], "private key not found"),
])
def test_user_mistakes_are_one_line_and_exit_2(capsys, logs, log_dir, key_file, argv, message):
    base = ["--log-dir", str(log_dir), "--key-file", str(key_file)]
    code, out, err = run(capsys, *argv, *[a for a in base if a not in argv and not _overridden(argv, a, base)])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def _overridden(argv, arg, base):
    index = base.index(arg)
    flag = base[index - 1] if index % 2 else arg
    return flag in argv


def test_bad_config_names_file_and_line(capsys, tmp_path):
    config = tmp_path / "wireproxy.toml"
    config.write_text('[log]\ndir = 5\n')
    code, _, err = run(capsys, "sessions", "list", "--config", config)
    assert code == 2 and f"{config}:2:" in err and "log.dir must be a string" in err
    config.write_text('[log\n')
    code, _, err = run(capsys, "sessions", "verify", "--config", config)
    assert code == 2 and "invalid TOML" in err


def test_keys_init_rotate_list(capsys, tmp_path):
    key = tmp_path / "k" / "wireproxy.key"
    code, out, _ = run(capsys, "keys", "init", "--key-file", key)
    assert code == 0 and "off the proxy host" in out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and Path(f"{key}.pub").exists()
    code, _, err = run(capsys, "keys", "init", "--key-file", key)
    assert code == 2 and "already exists" in err
    first = out.split()[2]
    code, out, _ = run(capsys, "keys", "rotate", "--key-file", key)
    assert code == 0 and first in out
    archived = Path(f"{key}.old") / f"{first}.key"
    assert stat.S_IMODE(archived.stat().st_mode) == 0o600
    code, out, _ = run(capsys, "keys", "list", "--key-file", key)
    assert code == 0 and f"{first}  retired" in out and out.count("current") == 2


def test_keys_rotate_needs_the_private_key(capsys, tmp_path):
    key = tmp_path / "wireproxy.key"
    init_keys(key)
    key.unlink()  # moved off the host, as it should be
    code, _, err = run(capsys, "keys", "rotate", "--key-file", key)
    assert code == 2 and "no private key here" in err
    code, _, err = run(capsys, "sessions", "list", "--key-file", key, "--log-dir", tmp_path)
    assert code == 2 and "needs the private key" in err


def test_parse_since():
    import datetime as dt

    now = dt.datetime(2025, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_since("30m", now) == now - dt.timedelta(minutes=30)
    assert parse_since("7d", now) == now - dt.timedelta(days=7)
    assert parse_since("2025-11-24", now) == dt.datetime(2025, 11, 24, tzinfo=dt.timezone.utc)
    assert parse_since("2025-11-24T10:00+02:00", now).utcoffset() == dt.timedelta(hours=2)
    assert parse_since("2025-11-24T10:00Z", now) == dt.datetime(2025, 11, 24, 10, tzinfo=dt.timezone.utc)


def test_module_entry_point_exit_codes(logs, log_dir, key_file):
    repo = Path(__file__).resolve().parents[3]
    cmd = [sys.executable, "-m", "wireproxy.cli", "sessions", "verify", *map(str, _paths(log_dir, key_file))]
    done = subprocess.run(cmd + [logs["carol"].stem], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "Traceback" not in done.stderr
    done = subprocess.run(cmd + ["nope"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == f"wireproxy: no session nope in {log_dir}"
