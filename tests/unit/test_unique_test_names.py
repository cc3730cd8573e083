"""Test modules are imported by basename (the test dirs are not packages): two files with one
name make the whole suite fail to collect. Catch it here, with both paths named."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_module_has_a_basename_of_its_own():
    seen: dict[str, list[str]] = defaultdict(list)
    for folder in ("tests", "fuzz"):
        for path in (ROOT / folder).rglob("test_*.py"):
            seen[path.name].append(str(path.relative_to(ROOT)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"
