"""Session recording end to end: a real `wireproxy serve` in front of a real PostgreSQL, real
clients (psycopg 3, psql), and the `wireproxy sessions ...` / `wireproxy keys ...` CLI reading
what the proxy wrote.

What is shown here (issue 5, "What must be shown"): sessions are listed and replayed statement
by statement, blocked ones with their rule ids and errors with their SQLSTATE; a marker sent
through the proxy is nowhere in the bytes under the log dir; tampering and truncation of a
proxy-written file are told apart by `verify`'s exit code; a rotated key leaves old logs
readable; a kill -9 leaves a log that verifies as truncated and still replays; the wrong
private key is one clear line and exit 2; a log dir that cannot be written refuses sessions.
The exhaustive byte-level cases live in the unit and hypothesis tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from proxyprocess import WIREPROXY

RULES = """
mode = "enforce"

[[rule]]
id = "no-drop"
action = "block"
statements = ["drop", "truncate"]
message = "dropping objects needs a change request"

[[rule]]
id = "no-wipe"
action = "block"
statements = ["delete", "update"]
without_where = true
message = "bound your writes"
"""

CLI_TIMEOUT = 30


# --- helpers ---------------------------------------------------------------------------------


def cli(*args: str | Path) -> subprocess.CompletedProcess:
    """Run `wireproxy ...` as a user would; never raises on a non-zero exit."""
    return subprocess.run([*WIREPROXY, *map(str, args)], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)


def sessions(command: str, *args: str | Path, log_dir: Path, key_file: Path) -> subprocess.CompletedProcess:
    return cli("sessions", command, *args, "--log-dir", log_dir, "--key-file", key_file)


def assert_one_clean_line(run: subprocess.CompletedProcess, *needles: str) -> str:
    """A user-facing failure: one line on stderr, `wireproxy: ...`, no traceback."""
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    line = lines[0]
    assert line.startswith("wireproxy: "), line
    for needle in needles:
        assert needle in line, line
    return line


def list_json(log_dir: Path, key_file: Path, *extra: str) -> list[dict]:
    run = sessions("list", "--json", *extra, log_dir=log_dir, key_file=key_file)
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]


def show_json(sid: str, log_dir: Path, key_file: Path, expect_exit: int = 0) -> dict:
    run = sessions("show", sid, "--json", log_dir=log_dir, key_file=key_file)
    assert run.returncode == expect_exit, (run.returncode, run.stdout, run.stderr)
    return json.loads(run.stdout)


def log_files(log_dir: Path) -> list[Path]:
    return sorted(log_dir.glob("*.wpl"))


def closed_session(proxy, after: int = 0, **fields) -> str:
    """The session id of the next connection.close event matching `fields`."""
    event = proxy.wait_for("connection.close", after=after, **fields)
    assert event.get("session"), event
    return event["session"]


def parse_ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def rules(tmp_path) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    return path


@pytest.fixture
def guard_table(pg):
    pg.psql("drop table if exists sl_guard; create table sl_guard (id int primary key, v text);"
            "insert into sl_guard values (1, 'one'), (2, 'two');"
            "grant all on sl_guard to scramuser")
    yield "sl_guard"


# The psycopg session of test 1: (what the client does, what the record must say).
# psycopg 3 sends a statement without parameters as a simple Query, one with parameters (or
# prepare=True) through Parse/Bind/Execute.
def run_psycopg_session(conn: psycopg.Connection, marker: str) -> list[dict]:
    expected = []
    conn.execute(f"select '{marker}-literal' as m")
    expected.append(dict(sql=f"select '{marker}-literal' as m", protocol="simple", decision="allow", rows=1))

    row = conn.execute("select %s::text as echo", (f"{marker}-param",)).fetchone()
    assert row == (f"{marker}-param",)
    expected.append(dict(sql="select $1::text as echo", protocol="extended", decision="allow",
                         params=[f"{marker}-param"], rows=1))

    # %t: text format (psycopg sends Python ints in binary by default; see the xfail below)
    conn.execute("insert into sl_guard values (%t, %t)", (3, "three"))
    expected.append(dict(sql="insert into sl_guard values ($1, $2)", protocol="extended", decision="allow",
                         params=["3", "three"], rows=1))

    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="blocked by wireproxy rule no-drop"):
        conn.execute("drop table sl_guard")
    expected.append(dict(sql="drop table sl_guard", protocol="simple", decision="block", rules=["no-drop"],
                         error_code="42501"))

    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="blocked by wireproxy rule no-wipe"):
        conn.execute("delete from sl_guard", prepare=True)
    expected.append(dict(sql="delete from sl_guard", protocol="extended", decision="block", rules=["no-wipe"],
                         error_code="42501"))

    with pytest.raises(psycopg.errors.DivisionByZero):
        conn.execute("select 1/0")
    expected.append(dict(sql="select 1/0", protocol="simple", decision="allow", error_code="22012"))

    # One prepared statement run twice: Parse once, Bind/Execute twice -> two records.
    for key in (1, 2):
        assert conn.execute("select v from sl_guard where id = %t", (key,), prepare=True).fetchone()
        expected.append(dict(sql="select v from sl_guard where id = $1", protocol="extended",
                             decision="allow", params=[str(key)], rows=1))

    conn.execute("select 'last one'")
    expected.append(dict(sql="select 'last one'", protocol="simple", decision="allow", rows=1))
    return expected


def check_record(record: dict, want: dict) -> None:
    for key, value in want.items():
        if key == "error_code":
            assert isinstance(record.get("error"), dict), record
            assert record["error"]["code"] == value, record
            assert record["error"].get("message"), record
        else:
            assert record.get(key) == value, (key, record)
    if "error_code" not in want:
        assert not record.get("error"), record
    if want["decision"] == "allow":
        assert "rules" not in record or not record["rules"], record
    assert isinstance(record.get("duration_ms"), (int, float)) and record["duration_ms"] >= 0, record
    assert record.get("ts"), record


# --- 1. list and replay ------------------------------------------------------------------------


def test_sessions_are_listed_and_replayed_in_order(pg, start_proxy, rules, guard_table, tmp_path):
    log_dir = tmp_path / "sessions"
    key_file = tmp_path / "wireproxy.key"           # the default: <log dir>/../wireproxy.key
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    proxy = start_proxy("--log-dir", str(log_dir), rules=rules)
    created = proxy.wait_for("keys.created")
    assert created["private_key"] == str(key_file) and created["public_key"] == f"{key_file}.pub"
    assert key_file.stat().st_mode & 0o777 == 0o600

    marker = "m" + uuid.uuid4().hex
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True, application_name="e2e-psycopg") as conn:
        expected = run_psycopg_session(conn, marker)
    psycopg_sid = closed_session(proxy, application_name="e2e-psycopg")

    script = "select 42 as answer;\ndrop table sl_guard;\nselect 'after the block';\n"
    run = subprocess.run(["psql", "-X", "-d", pg.dsn(port=proxy.port, user="scramuser"), "-v", "ON_ERROR_STOP=0"],
                         input=script, capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PGPASSWORD": "scram-secret"})
    assert "blocked by wireproxy rule no-drop" in run.stderr
    assert "after the block" in run.stdout
    psql_sid = closed_session(proxy, application_name="psql")
    assert proxy.stop() == 0                        # graceful stop: every log sealed
    after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)

    assert {p.stem for p in log_files(log_dir)} == {psycopg_sid, psql_sid}

    # list --json: both, with user, database, started, statements
    listed = {item["id"]: item for item in list_json(log_dir, key_file)}
    assert set(listed) == {psycopg_sid, psql_sid}
    one, two = listed[psycopg_sid], listed[psql_sid]
    assert (one["user"], one["database"], one["statements"]) == ("postgres", "postgres", len(expected))
    assert (two["user"], two["database"], two["statements"]) == ("scramuser", "postgres", 3)
    assert one["application_name"] == "e2e-psycopg" and two["application_name"] == "psql"
    for item in (one, two):
        assert before <= parse_ts(item["started"]) <= after, item
        assert item["status"] == "intact", item
    assert parse_ts(one["started"]) <= parse_ts(two["started"])

    # the text form of list, and --user
    run = sessions("list", log_dir=log_dir, key_file=key_file)
    assert run.returncode == 0, run.stderr
    assert psycopg_sid in run.stdout and psql_sid in run.stdout and "scramuser" in run.stdout
    assert [i["id"] for i in list_json(log_dir, key_file, "--user", "scramuser")] == [psql_sid]

    # show --json: every statement, in order, as it happened
    doc = show_json(psycopg_sid, log_dir, key_file)
    assert doc["status"] == "intact"
    assert doc["header"]["user"] == "postgres" and doc["header"]["application_name"] == "e2e-psycopg"
    records = doc["records"]
    assert [r["seq"] for r in records] == list(range(1, len(expected) + 1))
    assert [r["sql"] for r in records] == [w["sql"] for w in expected]
    for record, want in zip(records, expected):
        check_record(record, want)
    assert doc["end"]["records"] == len(expected)
    stamps = [parse_ts(r["ts"]) for r in records]
    assert stamps == sorted(stamps)

    doc = show_json(psql_sid, log_dir, key_file)
    psql_expected = [dict(sql="select 42 as answer;", decision="allow", rows=1),
                     dict(sql="drop table sl_guard;", decision="block", rules=["no-drop"], error_code="42501"),
                     dict(sql="select 'after the block';", decision="allow", rows=1)]
    assert [r["sql"].strip() for r in doc["records"]] == [w["sql"] for w in psql_expected]
    for record, want in zip(doc["records"], psql_expected):
        want = {**want, "sql": record["sql"], "protocol": "simple"}
        check_record(record, want)

    # show, the text form: the same statements in the same order, decisions and outcomes
    run = sessions("show", psycopg_sid, log_dir=log_dir, key_file=key_file)
    assert run.returncode == 0, run.stderr
    text = run.stdout
    # in order (the prepared statement twice): each one found after the one before it
    pos = 0
    for want in expected:
        found = text.find(want["sql"], pos)
        assert found >= 0, (want["sql"], text)
        pos = found + 1
    assert "[block no-drop]" in text and "[block no-wipe]" in text
    assert "error 22012: division by zero" in text
    assert "error 42501: blocked by wireproxy rule no-drop" in text
    assert f'"{marker}-param"' in text              # bound parameters are shown
    assert "intact" in text.splitlines()[-1]

    # and the whole thing as JSON lines, for a SIEM
    run = sessions("export", "--format", "jsonl", log_dir=log_dir, key_file=key_file)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    statements = [e for e in events if e["event"] == "statement" and e["session_id"] == psycopg_sid]
    assert [e["sql"] for e in statements] == [w["sql"] for w in expected]
    assert {e["event"] for e in events} == {"session_start", "statement", "session_end"}


# --- 2. nothing in clear ---------------------------------------------------------------------


def test_marker_is_nowhere_in_the_log_dir_bytes(pg, start_proxy, rules, guard_table, tmp_path):
    log_dir = tmp_path / "sessions"
    key_file = tmp_path / "keys" / "wireproxy.key"
    proxy = start_proxy("--log-dir", str(log_dir), "--key-file", str(key_file), rules=rules)
    marker = "ZQX" + uuid.uuid4().hex.upper()
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True, application_name=f"app-{marker}") as conn:
        conn.execute(f"select '{marker}' as in_the_text")                        # simple
        conn.execute("select %s::text as in_a_param", (f"param-{marker}",))      # extended, bound
        conn.execute(f"select %s::text || '{marker}'", ("both",), prepare=True)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"drop table \"{marker}\"")                             # blocked
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute(f"select '{marker}'::int")                              # in the error message
    sid = closed_session(proxy)
    assert proxy.stop() == 0

    # it was recorded (else its absence would prove nothing)...
    run = sessions("show", sid, "--json", log_dir=log_dir, key_file=key_file)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count(marker) >= 6, run.stdout

    # ...and no file under the log dir holds it, in any common encoding
    needles = [marker.encode(), marker.lower().encode(), marker.encode("utf-16-le"), marker.encode().hex().encode()]
    files = [p for p in log_dir.rglob("*") if p.is_file()]
    assert files and any(p.suffix == ".wpl" for p in files)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} in clear in {path}"
        for word in (b"postgres", b"sl_guard", b"select", b"app-"):
            assert word not in data, f"{word!r} in clear in {path}"


# --- 3. tampering and truncation of a real log --------------------------------------------------


PREAMBLE_SIZE = 108                 # see wireproxy/sessionlog/format.py
FRAME = struct.Struct(">IQIB3xI")   # format 2: length, seq of its first record, count, kind, pad, crc


def frames_of(data: bytes) -> list[tuple[int, int, int, int]]:
    """(start, end, first seq, record count) of each frame after the preamble."""
    assert data[:8] == b"WPSLOG\x00\x02"
    spans, off = [], PREAMBLE_SIZE
    while off < len(data):
        length, seq, count, _kind, _crc = FRAME.unpack_from(data, off)
        end = off + FRAME.size + length
        spans.append((off, end, seq, count))
        off = end
    assert off == len(data)
    return spans


def test_verify_tells_tampered_from_truncated_on_a_proxy_written_log(pg, start_proxy, rules, tmp_path):
    log_dir = tmp_path / "sessions"
    key_file = tmp_path / "wireproxy.key"
    proxy = start_proxy("--log-dir", str(log_dir), "--key-file", str(key_file), rules=rules)
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        for i in range(6):
            conn.execute("select %s::int * 2", (i,))
    sid = closed_session(proxy)
    assert proxy.stop() == 0
    (original,) = log_files(log_dir)
    data = original.read_bytes()
    spans = frames_of(data)
    # header, the 6 statements in one frame per flush (how many flushes fell among them is the
    # clock's business), final record
    header, *batches, final = spans
    assert (header[2], header[3]) == (0, 1) and (final[2], final[3]) == (7, 1)
    assert [seq for _, _, seq, _ in batches] == [1 + sum(b[3] for b in batches[:i]) for i in range(len(batches))]
    assert sum(count for *_, count in batches) == 6 and batches

    run = sessions("verify", sid, log_dir=log_dir, key_file=key_file)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "intact" in run.stdout

    def variant(name: str, content: bytes) -> Path:
        where = tmp_path / name
        where.mkdir()
        (where / original.name).write_bytes(content)
        return where

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    first, last = batches[0], batches[-1]
    cases = {
        "flip": (bytes(flipped), 1, "TAMPERED"),
        "truncate-mid-frame": (data[:len(data) - 7], 3, "truncated"),
        "truncate-at-frame": (data[:last[0]], 3, "truncated"),
        "remove-frame": (data[:first[0]] + data[first[1]:], 1, "TAMPERED"),
        "swap-frames": (data[:last[0]] + data[final[0]:final[1]] + data[last[0]:last[1]], 1, "TAMPERED"),
        "append-garbage": (data + b"appended", 1, "TAMPERED"),
    }
    for name, (content, code, word) in cases.items():
        where = variant(name, content)
        run = sessions("verify", sid, log_dir=where, key_file=key_file)
        assert run.returncode == code, (name, run.returncode, run.stdout, run.stderr)
        assert word in run.stdout, (name, run.stdout)
        assert "Traceback" not in run.stderr

    # verify with no id over a dir holding both: the worst one wins
    both = tmp_path / "mixed"
    both.mkdir()
    shutil.copy(original, both)
    assert sessions("verify", log_dir=both, key_file=key_file).returncode == 0
    (both / original.name).write_bytes(bytes(flipped))
    assert sessions("verify", log_dir=both, key_file=key_file).returncode == 1

    # a truncated log still replays what it holds: every frame before the cut
    where = tmp_path / "truncate-at-frame"
    doc = show_json(sid, where, key_file, expect_exit=3)
    assert [r["seq"] for r in doc["records"]] == list(range(1, last[2]))


# --- 4. key rotation --------------------------------------------------------------------------


def _wait_for_key_pickup(proxy, new_id: str, timeout: float = 5.0) -> None:
    """The proxy looks for a rotated public key every second and says so naming the new key id.
    Should that line change, the wait just runs out: the key_id check after it is what counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(new_id in line for line in list(proxy.lines)):
            return
        time.sleep(0.05)


def test_rotated_key_leaves_old_logs_readable(pg, start_proxy, rules, tmp_path):
    log_dir = tmp_path / "sessions"
    key_file = tmp_path / "keys" / "wireproxy.key"
    proxy = start_proxy("--log-dir", str(log_dir), "--key-file", str(key_file), rules=rules)
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        conn.execute("select 'before rotation'")
    old_sid = closed_session(proxy)
    old_id = list_json(log_dir, key_file)[0]["key_id"]

    run = cli("keys", "rotate", "--key-file", key_file)
    assert run.returncode == 0, run.stderr
    found = re.search(r"new key id ([0-9a-f]{16})", run.stdout)
    assert found, run.stdout
    new_id = found.group(1)
    assert new_id != old_id and old_id in run.stdout, run.stdout
    assert (key_file.parent / "wireproxy.key.old" / f"{old_id}.key").exists()

    _wait_for_key_pickup(proxy, new_id)             # the running proxy picks up the new public key
    mark = len(proxy.events)
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        conn.execute("select 'after rotation'")
    new_sid = closed_session(proxy, after=mark)
    assert proxy.stop() == 0

    listed = {item["id"]: item for item in list_json(log_dir, key_file)}
    assert listed[old_sid]["key_id"] == old_id
    assert listed[new_sid]["key_id"] == new_id
    for sid, sql in ((old_sid, "select 'before rotation'"), (new_sid, "select 'after rotation'")):
        doc = show_json(sid, log_dir, key_file)
        assert [r["sql"] for r in doc["records"]] == [sql]
        run = sessions("verify", sid, log_dir=log_dir, key_file=key_file)
        assert run.returncode == 0, run.stdout + run.stderr
    run = sessions("verify", log_dir=log_dir, key_file=key_file)
    assert run.returncode == 0, run.stdout + run.stderr

    # it is the archive that keeps the old one readable: the new private key alone cannot
    alone = tmp_path / "alone" / "wireproxy.key"
    alone.parent.mkdir()
    shutil.copy(key_file, alone)
    assert sessions("show", new_sid, log_dir=log_dir, key_file=alone).returncode == 0
    run = sessions("show", old_sid, log_dir=log_dir, key_file=alone)
    assert run.returncode == 2
    assert_one_clean_line(run, old_id)


# --- 5. kill -9 ------------------------------------------------------------------------------------


def test_kill_9_mid_session_leaves_a_truncated_readable_log(pg, start_proxy, rules, tmp_path):
    log_dir = tmp_path / "sessions"
    key_file = tmp_path / "wireproxy.key"
    proxy = start_proxy("--log-dir", str(log_dir), "--key-file", str(key_file), rules=rules)
    conn = psycopg.connect(pg.dsn(port=proxy.port), autocommit=True)
    try:
        conn.execute("select 'before the crash'")
        conn.execute("select %s::text", ("a bound value",))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("drop table pg_class")
        time.sleep(0.7)                              # past the 200 ms flush

        (path,) = log_files(log_dir)
        sid = path.stem
        run = sessions("verify", sid, log_dir=log_dir, key_file=key_file)   # still being written
        assert run.returncode == 0, run.stdout + run.stderr
        assert "open" in run.stdout

        proxy.proc.send_signal(signal.SIGKILL)
        assert proxy.proc.wait(10) == -signal.SIGKILL
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 'after the crash'")
    finally:
        conn.close()

    run = sessions("verify", sid, log_dir=log_dir, key_file=key_file)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "truncated: 3 records intact" in run.stdout
    run = sessions("verify", log_dir=log_dir, key_file=key_file)
    assert run.returncode == 3

    run = sessions("show", sid, log_dir=log_dir, key_file=key_file)
    assert run.returncode == 3
    for sql in ("select 'before the crash'", "select $1::text", "[block no-drop]  simple  drop table pg_class"):
        assert sql in run.stdout, run.stdout
    assert "after the crash" not in run.stdout
    assert_one_clean_line(run, "truncated")

    doc = show_json(sid, log_dir, key_file, expect_exit=3)
    assert doc["status"] == "truncated" and doc["end"] is None
    assert [r["sql"] for r in doc["records"]] == ["select 'before the crash'", "select $1::text",
                                                 "drop table pg_class"]
    assert doc["records"][1]["params"] == ["a bound value"]
    (item,) = list_json(log_dir, key_file)
    assert (item["status"], item["statements"]) == ("truncated", 3)


# --- 6. the wrong private key ------------------------------------------------------------------


def test_wrong_private_key_is_one_clear_line_and_exit_2(pg, start_proxy, rules, tmp_path):
    log_dir = tmp_path / "sessions"
    key_file = tmp_path / "wireproxy.key"
    proxy = start_proxy("--log-dir", str(log_dir), "--key-file", str(key_file), rules=rules)
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        conn.execute("select 'secret stuff'")
    sid = closed_session(proxy)
    assert proxy.stop() == 0
    right_id = list_json(log_dir, key_file)[0]["key_id"]

    other = tmp_path / "elsewhere" / "wireproxy.key"
    run = cli("keys", "init", "--key-file", other)
    assert run.returncode == 0, run.stderr
    assert other.stat().st_mode & 0o777 == 0o600

    for command, args in (("show", [sid]), ("show", [sid, "--json"]), ("verify", [sid]), ("verify", []),
                          ("list", ["--json"]), ("export", ["--format", "jsonl"])):
        run = sessions(command, *args, log_dir=log_dir, key_file=other)
        assert run.returncode == 2, (command, run.returncode, run.stdout, run.stderr)
        assert "secret stuff" not in run.stdout + run.stderr
        assert "Traceback" not in run.stdout
        if command in ("show", "list", "export"):
            assert_one_clean_line(run, right_id, "wrong private key")
        else:                                       # verify reports on stdout, one line per session
            assert "Traceback" not in run.stderr
            assert f"{sid}  unreadable:" in run.stdout and "wrong private key" in run.stdout

    # and key files that are not a private key at all
    run = sessions("show", sid, log_dir=log_dir, key_file=tmp_path / "nope.key")
    assert run.returncode == 2
    assert_one_clean_line(run, "nope.key", "not found")
    run = sessions("show", sid, log_dir=log_dir, key_file=Path(f"{key_file}.pub"))
    assert run.returncode == 2
    assert_one_clean_line(run, "private key")


# --- 7. fail-closed ---------------------------------------------------------------------------------


def test_unwritable_log_dir_refuses_sessions(pg, start_proxy, rules, tmp_path):
    # Root writes through chmod, so make the log dir a path that runs through a regular file.
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    log_dir = afile / "sessions"
    key_file = tmp_path / "wireproxy.key"
    proxy = start_proxy("--log-dir", str(log_dir), "--key-file", str(key_file), rules=rules)
    # It starts (the log may come back: the writer probes it again), and says so loudly...
    assert any("session log" in line and str(log_dir) in line for line in proxy.lines), proxy.lines

    # ...and every new session is refused before it reaches the upstream: FATAL, naming the log.
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(pg.dsn(port=proxy.port), connect_timeout=10)
    message = str(refused.value)
    assert "FATAL" in message and "cannot record this session" in message and "session log" in message, message
    assert str(log_dir) in message
    event = proxy.wait_for("session.refused")
    assert "session log unavailable" in event["reason"]
    assert proxy.wait_for("connection.close", reason="session log unavailable")["bytes_from_server"] == 0

    mark = len(proxy.events)
    run = subprocess.run(["psql", "-X", "-d", pg.dsn(port=proxy.port), "-c", "select 'got through'"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "got through" not in run.stdout
    assert "FATAL:  wireproxy cannot record this session: session log unavailable" in run.stderr
    assert proxy.wait_for("session.refused", after=mark)["client"]
    assert proxy.count("session.refused") == 2
    assert proxy.proc.poll() is None                 # the proxy itself goes on
    assert afile.read_text() == "not a directory\n"


def test_unwritable_log_dir_is_a_json_log_event(pg, start_proxy, rules, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    proxy = start_proxy("--log-dir", str(afile / "sessions"), "--key-file", str(tmp_path / "wireproxy.key"),
                        rules=rules)
    not_json = [line for line in proxy.lines if not line.startswith("{")]
    assert not not_json, not_json
    assert any(e.get("level") in ("error", "critical") and "session log" in json.dumps(e)
               for e in proxy.events), proxy.events


# --- gaps found on the way ----------------------------------------------------------------------


def test_binary_bound_parameters_are_recorded_by_value(pg, start_proxy, rules, guard_table, tmp_path):
    log_dir = tmp_path / "sessions"
    key_file = tmp_path / "wireproxy.key"
    proxy = start_proxy("--log-dir", str(log_dir), "--key-file", str(key_file), rules=rules)
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        conn.execute("delete from sl_guard where id = %s", (2,))
    sid = closed_session(proxy)
    assert proxy.stop() == 0
    (record,) = show_json(sid, log_dir, key_file)["records"]
    assert record["sql"] == "delete from sl_guard where id = $1" and record["rows"] == 1
    assert record["params"] == ["2"], record["params"]
