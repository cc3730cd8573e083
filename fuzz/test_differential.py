"""The default rule pack against PostgreSQL itself (fuzz/differential): every statement of the
seed corpus, then 80 generated and mutated ones (WIREPROXY_SLOW=1: two minutes' worth).
Each statement runs in a rolled-back transaction on a scratch database; what it did (catalog
diffs, rows touched, markers of sensitive tables in results and new relations, roles, RLS)
must match the decision: an effect is blocked or held, no effect is not stopped.
`python -m fuzz differential --seconds N` runs the same check for as long as you like."""

from __future__ import annotations

import os

import pytest

from fuzz.differential.mutate import load_corpus
from fuzz.differential.runner import run

SLOW = bool(os.environ.get("WIREPROXY_SLOW"))


@pytest.mark.slow
def test_default_pack_matches_what_postgresql_does():
    stats = run(120.0) if SLOW else run(0, examples=80)   # CI: the same 80 statements everywhere
    summary = stats.summary()
    assert summary["tried"] >= len(load_corpus())
    assert summary["with_effect"] >= 60 and summary["ran"] >= 100, summary    # the observer sees effects
    assert not stats.misses, [(f.sql, f.effects) for f in stats.misses]
    assert not stats.false_blocks, [(f.sql, f.rule) for f in stats.false_blocks]

