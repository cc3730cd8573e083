"""A newcomer's path: a fresh directory, `wireproxy serve --log-dir D` with a session recorded
through it, then `wireproxy sessions list`, `show` and `verify` with nothing more than what serve
was given. One rule says where the key lives (config.locations), and serve says it at start."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import psycopg
import pytest

from proxyprocess import ROOT, WIREPROXY, ProxyProcess


def wireproxy(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*WIREPROXY, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def record_a_session(pg, proxy: ProxyProcess) -> str:
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True, application_name="newcomer") as conn:
        assert conn.execute("select %s::text", ("hello",)).fetchone() == ("hello",)
        conn.execute("select 42")
    return proxy.wait_for("connection.close", application_name="newcomer")["session"]


def read_back(cwd: Path, session: str, *flags: str) -> None:
    listed = wireproxy(cwd, "sessions", "list", *flags)
    assert listed.returncode == 0 and session in listed.stdout and "Traceback" not in listed.stderr, listed.stderr
    shown = wireproxy(cwd, "sessions", "show", session, *flags)
    assert shown.returncode == 0, shown.stderr
    assert "select $1::text" in shown.stdout and "select 42" in shown.stdout
    verified = wireproxy(cwd, "sessions", "verify", *flags)
    assert verified.returncode == 0 and f"{session}  intact" in verified.stdout, verified.stdout + verified.stderr


@pytest.mark.parametrize("log_dir", ["wireproxy-sessions", "state/logs"])
def test_serve_log_dir_then_sessions_with_no_extra_flags(pg, tmp_path, log_dir):
    home = tmp_path / "fresh"
    home.mkdir()
    proxy = ProxyProcess(["serve", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{pg.port}",
                          "--log-dir", log_dir], cwd=home)
    try:
        recording = proxy.wait_for("recording")
        key_file = (home / log_dir).resolve().parent / "wireproxy.key"
        assert recording["log_dir"] == str((home / log_dir).resolve())
        assert recording["private_key"] == str(key_file) and key_file.exists()
        assert recording["read_with"] == f"wireproxy sessions list --log-dir {(home / log_dir).resolve()}"
        session = record_a_session(pg, proxy)
    finally:
        proxy.stop()
    # exactly what serve was given: nothing (the default dir) or the same --log-dir
    flags = () if log_dir == "wireproxy-sessions" else ("--log-dir", log_dir)
    read_back(home, session, *flags)
    # and what serve printed works as printed
    read_back(tmp_path, session, *recording["read_with"].split()[3:])


def test_serve_config_then_sessions_with_the_same_config(pg, tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "wireproxy.toml"
    config.write_text(f'[log]\ndir = "../var/sessions"\n\n[[postgres]]\nlisten = "127.0.0.1:0"\n'
                      f'upstream = "127.0.0.1:{pg.port}"\n')
    proxy = ProxyProcess(["serve", "--config", str(config)], cwd=tmp_path)
    try:
        assert proxy.wait_for("recording")["private_key"] == str(tmp_path / "var" / "wireproxy.key")
        session = record_a_session(pg, proxy)
    finally:
        proxy.stop()
    read_back(tmp_path, session, "--config", str(config))
    keys = wireproxy(tmp_path, "keys", "list", "--config", str(config))
    assert keys.returncode == 0 and "current" in keys.stdout


def test_serve_without_a_log_dir_says_it_records_nothing(pg, tmp_path):
    proxy = ProxyProcess(["serve", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{pg.port}"], cwd=tmp_path)
    try:
        off = proxy.wait_for("recording.off")
        assert "not recorded" in off["note"]
    finally:
        proxy.stop()
    assert not list(tmp_path.iterdir())                         # and it left nothing behind


def test_the_recording_line_is_json_with_no_secret(pg, tmp_path):
    proxy = ProxyProcess(["serve", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{pg.port}",
                          "--log-dir", "logs"], cwd=tmp_path)
    try:
        proxy.wait_for("ready")
    finally:
        proxy.stop()
    key_text = (tmp_path / "wireproxy.key").read_text()
    assert not any(key_text.strip().splitlines()[1] in line for line in proxy.lines)
    assert [json.loads(line)["event"] for line in proxy.lines].count("recording") == 1


def test_the_admin_token_is_found_by_the_same_rule(pg, tmp_path):
    proxy = ProxyProcess(["serve", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{pg.port}",
                          "--log-dir", "state/logs", "--admin", "127.0.0.1:0"], cwd=tmp_path)
    try:
        admin = proxy.wait_for("listening", kind="admin")
        assert admin["token_file"] == str(tmp_path / "state" / "wireproxy-admin.token")   # beside the key
        listed = wireproxy(tmp_path, "approvals", "list", "--json", "--log-dir", "state/logs",
                           "--admin", admin["address"])
        assert listed.returncode == 0 and listed.stdout == "", listed.stderr
        elsewhere = wireproxy(tmp_path, "approvals", "list", "--admin", admin["address"])
        assert elsewhere.returncode == 2 and "wireproxy-admin.token" in elsewhere.stderr
    finally:
        proxy.stop()


def test_a_real_cut_result_and_a_nasty_statement_in_the_transcript(pg, tmp_path):
    rules = tmp_path / "cap.toml"
    rules.write_text('[[rule]]\nid = "cap-rows"\naction = "block"\nstatements = ["select"]\nmax_rows = 10\n')
    proxy = ProxyProcess(["serve", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{pg.port}",
                          "--rules", str(rules), "--log-dir", "logs"], cwd=tmp_path)
    try:
        with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True, application_name="cut") as conn:
            with pytest.raises(psycopg.errors.ProgramLimitExceeded):
                conn.execute("select g from generate_series(1, 100000) g")
            conn.execute("select '\x1b[2J\x1b]0;pwned\x07' as title")
        session = proxy.wait_for("connection.close", application_name="cut")["session"]
    finally:
        proxy.stop()
    shown = wireproxy(tmp_path, "sessions", "show", session, "--log-dir", "logs")
    assert shown.returncode == 0, shown.stderr
    (cut,) = [line for line in shown.stdout.splitlines() if "generate_series" in line]
    assert "[cut cap-rows]" in cut and "[allow" not in cut
    assert "54000: result cut by wireproxy rule cap-rows: more than 10 rows" in shown.stdout
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "select '\\x1b[2J\\x1b]0;pwned\\x07' as title" in shown.stdout


def readme_first_minute() -> list[str]:
    """The command lines of the README's "Your own database, in a minute", as written there."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Your own database, in a minute", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ") and line.strip()]


def test_the_readme_first_minute(pg, tmp_path):
    lines = readme_first_minute()
    assert [shlex.split(line)[:2] for line in lines] == [["wireproxy", "serve"], ["psql", shlex.split(lines[1])[1]],
                                                       ["wireproxy", "sessions"], ["wireproxy", "sessions"]]
    (tmp_path / "rules").symlink_to(ROOT / "rules")              # "from this checkout"
    serve = shlex.split(lines[0])[1:]
    serve[serve.index("--upstream") + 1] = f"127.0.0.1:{pg.port}"
    proxy = ProxyProcess([*serve, "--listen", "127.0.0.1:0"], cwd=tmp_path)
    try:
        psql = shlex.split(lines[1])
        psql[1] = pg.dsn(port=proxy.port)                         # the test's port and password
        shown = subprocess.run(psql, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "****@example.com" in shown.stdout, shown.stdout + shown.stderr
        proxy.wait_for("connection.close")
    finally:
        proxy.stop()
    for line in lines[2:]:
        done = wireproxy(tmp_path, *shlex.split(line)[1:])
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "intact: 1 record, sealed" in done.stdout          # verify: the psql session, sealed
