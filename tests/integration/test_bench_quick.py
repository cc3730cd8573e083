"""`python -m bench --quick` runs the whole harness against a real PostgreSQL, pgbench, psql, the
bare relay, wireproxy's configurations and the HTTP bench, and writes a report and a chart.
It checks that the harness works; it asserts nothing about speed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_quick_bench_writes_a_report_and_a_chart(tmp_path):
    if shutil.which("pgbench") is None or shutil.which("pg_config") is None:
        pytest.fail("pgbench and pg_config are needed: install postgresql-client / postgresql")
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "REPORT.md").read_text()
    for heading in ("## pgbench -S", "## Large results", "## HTTP"):
        assert heading in report
    for target in ("direct", "bare-relay", "wireproxy+rules", "wireproxy+rules+rec", "wireproxy+pii"):
        assert f"| {target} |" in report, target
    assert "check: DROP blocked" in report and "NOT MASKED" not in report
    assert "| wireproxy, rules/llm.toml |" in report
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
