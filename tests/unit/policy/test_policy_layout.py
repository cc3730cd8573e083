"""policy/ is pure: it imports nothing of config/, masking/, the proxies or trio (read from the
sources with ast, so a lazy import inside a function counts too), its modules stay short, and
the fact types sit below both extractors (no import circle)."""

import ast
from pathlib import Path

import pytest

POLICY = Path(__file__).resolve().parents[3] / "wireproxy" / "policy"
FORBIDDEN = ("wireproxy.config", "wireproxy.masking", "wireproxy.pg", "wireproxy.http", "trio")
SOURCES = sorted(POLICY.rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return out


def test_sources_found():
    names = {p.relative_to(POLICY).as_posix() for p in SOURCES}
    assert {"engine.py", "rules.py", "facttypes.py", "truth.py", "pgfacts/walker.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(POLICY).as_posix())
def test_policy_imports_nothing_above_it(path):
    bad = [f"{path.name}:{line}: {name}" for line, name in _imports(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(POLICY).as_posix())
def test_modules_and_functions_are_short(path):
    text = path.read_text()
    assert text.count("\n") <= 420, f"{path.name} has {text.count(chr(10))} lines"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(text))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno >= 65]
    assert not long, long


def test_fact_types_import_neither_extractor():
    for module in ("facttypes.py", "truth.py", "rules.py", "decision.py"):
        names = [name for _, name in _imports(POLICY / module)]
        assert not [n for n in names if "pgfacts" in n or "sqlglotfacts" in n or n.endswith(".facts")], module


def test_extractors_do_not_import_the_dispatcher():
    for path in [POLICY / "sqlglotfacts.py", *sorted((POLICY / "pgfacts").glob("*.py"))]:
        names = [name for _, name in _imports(path)]
        assert "wireproxy.policy.facts" not in names and "wireproxy.policy.engine" not in names, path.name
