"""The architecture's import rules, read from the sources with ast (nothing is imported).

- protocols/ is sans-I/O: it imports nothing of wireproxy, and never trio;
- the services (policy/, masking/, sessionlog/, approvals/) never import the proxies (pg/, http/,
  tcp/, server) nor each other's internals (a package's public names are its __init__);
- the relay's collaborators import only the conversation's vocabulary (pg/protocol.py),
  protocols/ and their own service: never the relay, the pumps, trio or each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("policy", "masking", "sessionlog", "approvals")
PROXIES = ("wireproxy.pg", "wireproxy.http", "wireproxy.tcp", "wireproxy.server", "wireproxy.mcp")
COLLABORATORS = ("conversation", "enforcement", "rowmasks", "limits", "recording", "lookups", "holds")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, absolute (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def sources(*parts: str) -> list[Path]:
    return sorted((ROOT.joinpath(*parts)).rglob("*.py"))


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", sources("protocols"), ids=lambda p: str(p.relative_to(ROOT)))
def test_protocols_import_nothing_of_wireproxy_nor_trio(path):
    bad = {m for m in imports_of(path) if within(m, "wireproxy") or within(m, "trio")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("service", SERVICES)
def test_services_import_no_proxy_and_no_other_services_internals(service):
    for path in sources("wireproxy", service):
        for name in imports_of(path):
            assert not any(within(name, proxy) for proxy in PROXIES), (path, name)
            for other in SERVICES:
                if other == service:
                    continue
                package = f"wireproxy.{other}"
                inner = within(name, package) and name != package and not _public_name(package, name)
                assert not inner, f"{path.relative_to(ROOT)} reaches into {name}"


def _public_name(package: str, name: str) -> bool:
    """`from wireproxy.masking import Masker` resolves to wireproxy.masking.Masker: public when
    the package's __init__ exports it."""
    init = ROOT.joinpath(*package.split("."), "__init__.py")
    tail = name[len(package) + 1:]
    return "." not in tail and tail in init.read_text()


@pytest.mark.parametrize("collaborator", COLLABORATORS)
def test_relay_collaborators_import_only_the_vocabulary_protocols_and_their_service(collaborator):
    path = ROOT / "wireproxy" / "pg" / f"{collaborator}.py"
    allowed_pg = {"wireproxy.pg", "wireproxy.pg.protocol"}
    for name in imports_of(path):
        if within(name, "trio"):
            pytest.fail(f"{collaborator} imports trio")
        if within(name, "wireproxy.pg"):
            assert name in allowed_pg or name.startswith("wireproxy.pg.protocol."), (collaborator, name)
        elif within(name, "wireproxy"):
            assert within(name, "wireproxy.policy") or within(name, "wireproxy.masking"), (collaborator, name)


def test_the_import_reader_sees_relative_imports():
    """The rules above are only as good as imports_of: it must resolve `from ..x import y`."""
    found = imports_of(ROOT / "wireproxy" / "pg" / "relay.py")
    assert "wireproxy.pg.conversation" in found and "wireproxy.policy.strict" in found
