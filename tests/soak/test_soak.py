"""Soak: many concurrent clients mixing the integration suite's workloads against one proxy
(default rules + PII masking + recording), sampling its RSS and open fds.

CI runs 16 clients for 20 s; WIREPROXY_SLOW=1 runs 64 clients for 10 minutes
(WIREPROXY_SOAK_MINUTES overrides). At the end: memory and fds flat (the last samples against the
early ones after warm-up, with bounded slack), every client's work accounted for, every session
log verifying.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SLOW = bool(os.environ.get("WIREPROXY_SLOW"))
CLIENTS = 64 if SLOW else 16
SECONDS = float(os.environ.get("WIREPROXY_SOAK_MINUTES", 10 if SLOW else 20 / 60)) * 60


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _startup(user: str) -> bytes:
    body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0database\0postgres\0\0"
    return struct.pack("!i", len(body) + 4) + body


def one_round(dsn: str, port: int, rng: random.Random, tally: Counter) -> None:
    kind = rng.choice(["select", "blocked", "masked", "copy", "cancel", "pipeline", "vanish", "garbage"])
    if kind in ("vanish", "garbage"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            if kind == "vanish":           # startup and a query, then gone mid-query
                s.sendall(_startup("postgres"))
                s.recv(4096)
                s.sendall(b"Q" + struct.pack("!i", 27) + b"SELECT pg_sleep(0.5)\0\0\0")
            else:
                s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
                try:
                    s.recv(4096)
                except OSError:
                    pass
        tally[kind] += 1
        return
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        if kind == "select":
            assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        elif kind == "blocked":
            with pytest.raises(psycopg.Error, match="blocked"):
                conn.execute("DROP TABLE soak_items")
        elif kind == "masked":
            (shown,) = conn.execute("SELECT 'alice@example.com'").fetchone()
            assert "alice" not in shown, shown
        elif kind == "copy":
            conn.execute("CREATE TEMP TABLE soak_copy (n int, note text)")
            with conn.cursor() as cur:            # COPY ... TO is blocked by the default rules
                with cur.copy("COPY soak_copy FROM STDIN") as copy:
                    for n in range(200):
                        copy.write_row((n, f"row {n}"))
            assert conn.execute("SELECT count(*) FROM soak_copy").fetchone() == (200,)
        elif kind == "cancel":
            # a cancel that lands before the query reaches the server does nothing: repeat it
            running = threading.Event()
            running.set()

            def keep_cancelling():
                while running.is_set():
                    time.sleep(0.2)
                    if running.is_set():
                        conn.cancel()
            canceller = threading.Thread(target=keep_cancelling)
            canceller.start()
            try:
                with pytest.raises(psycopg.errors.QueryCanceled):
                    conn.execute("SELECT pg_sleep(30)")
            finally:
                running.clear()
                canceller.join()
            try:          # a cancel the canceller sent just as the sleep ended may land here
                assert conn.execute("SELECT 2").fetchone() == (2,)
            except psycopg.errors.QueryCanceled:
                assert conn.execute("SELECT 2").fetchone() == (2,)   # the session goes on
        elif kind == "pipeline":
            with conn.pipeline():
                curs = [conn.execute("SELECT %s::int", (i,)) for i in range(10)]
            assert [c.fetchone()[0] for c in curs] == list(range(10))
    tally[kind] += 1


@pytest.mark.slow
@pytest.mark.timeout(int(SECONDS) + 300)
def test_soak_memory_and_fds_flat_no_session_lost_logs_verify(pg, start_proxy, tmp_path):
    log_dir, key_file = tmp_path / "sessions", tmp_path / "wireproxy.key"
    proxy = start_proxy("--rules", str(ROOT / "rules" / "default.toml"), "--rules", str(ROOT / "rules" / "pii.toml"),
                        "--log-dir", str(log_dir), "--key-file", str(key_file))
    port, pid = proxy.port, proxy.proc.pid
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    stop_at = time.monotonic() + SECONDS
    tallies = [Counter() for _ in range(CLIENTS)]
    failures: list[str] = []

    def client(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < stop_at:
            try:
                one_round(dsn, port, rng, tallies[i])
                tallies[i]["rounds"] += 1
            except BaseException as exc:     # every client's work is accounted for
                failures.append(f"client {i}: {type(exc).__name__}: {exc}")
                return

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    samples = []
    while any(t.is_alive() for t in threads):
        samples.append((_rss_kb(pid), _fds(pid)))
        time.sleep(1)
    for t in threads:
        t.join()
    assert failures == [], failures[:5]
    total = sum(tallies, Counter())
    assert all(t["rounds"] > 0 for t in tallies) and len(total) >= 9, total
    time.sleep(1)                              # sessions close; fds go back
    settled = (_rss_kb(pid), _fds(pid))
    warm = samples[len(samples) // 4:] or samples
    early, late = warm[: max(1, len(warm) // 3)], warm[-max(1, len(warm) // 3):]
    early_rss = max(r for r, _ in early)
    assert max(r for r, _ in late) <= early_rss * 1.5 + 20_000, (early, late)    # bounded growth
    assert settled[1] <= min(f for _, f in samples) + 8, (settled, samples[:3])  # no fd leak
    verify = subprocess.run([str(Path(sys.executable).parent / "wireproxy"), "sessions", "verify", "--log-dir", str(log_dir),
                             "--key-file", str(key_file)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
    print(f"soak: {CLIENTS} clients, {SECONDS:.0f} s, {dict(total)}; RSS kB early {early_rss}, "
          f"late {max(r for r, _ in late)}; fds min {min(f for _, f in samples)}, settled {settled[1]}")
