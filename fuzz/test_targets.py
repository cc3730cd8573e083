"""Every fuzz target in CI: its seed corpus replayed (every crash found stays there as a
regression), a short hypothesis slice of mutated seeds, and the CLI's own plumbing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given

from fuzz import engines
from fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent


def test_every_target_has_a_seed_corpus():
    assert {name for name in TARGETS if not engines.seeds(name)} == set()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_corpus_replays_clean(name):
    for data in engines.seeds(name):
        TARGETS[name].check(data)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_seeds_keep_the_rule(name):
    @given(engines._mutations(engines.seeds(name)))
    def run(data):
        TARGETS[name].check(data)
    run()


def test_a_broken_rule_is_reported_and_the_input_saved(tmp_path, monkeypatch):
    monkeypatch.setattr(engines, "CRASHES", tmp_path)

    def check(data: bytes) -> None:
        if len(data) > 3:
            raise KeyError("not the parser's own error")
    target = engines.Target("broken", check, "")
    assert engines.run_hypothesis(target, seconds=20) == 1
    saved = list((tmp_path / "broken").iterdir())
    assert saved and all(len(p.read_bytes()) > 3 for p in saved)


def test_cli_lists_and_runs_a_target():
    listing = subprocess.run([sys.executable, "-m", "fuzz", "--list"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    assert all(name in listing for name in TARGETS)
    run = subprocess.run([sys.executable, "-m", "fuzz", "sse", "--seconds", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "no failure" in run.stdout


def test_cli_runs_a_target_under_atheris_with_coverage():
    run = subprocess.run([sys.executable, "-m", "fuzz", "pg-frontend", "--engine", "atheris", "--seconds", "2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "INITED cov:" in run.stderr and "Done " in run.stderr
    assert not list((ROOT / "fuzz" / "crashes").glob("pg-frontend-*"))
