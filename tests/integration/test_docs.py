"""Every command and config in docs/*.md, run or loaded, and the Dockerfile checked.

Convention: a fenced block is tested when the line just before its opening fence is an HTML
comment `<!-- test: KIND -->`. Every ```toml, ```sh, ```python and ```java block must carry one
(test_every_block_is_tagged). Kinds:

- `config`: a whole wireproxy.toml, loaded with `load_config` in a temp dir beside a `rules/`
  link to the shipped packs; its rule files are loaded too.
- `rules`: a rule file, loaded with `load_rules`.
- `sh`: run with `bash -euo pipefail` in a temp dir holding `rules/`, against a wireproxy this
  test starts (default and PII packs) in front of the test PostgreSQL.
- `python`: run with this venv's Python in the same way; `python-http`: the same against an
  `[[http]]` listener in front of tests/fakellm.py.
- `java`: compiled and run with `java -cp <pgjdbc jar> Snippet.java` (collected only when a JVM
  and the PostgreSQL JDBC driver are on this machine).
- `sh-setup`: commands that change the host (systemd, docker): the repository files they name
  must exist and every `wireproxy ...` line's flags must be ones its --help lists.
- `prometheus-rules`: every wireproxy_* metric and label value an alert names must exist.

Snippets are written for the documented ports; the test substitutes its own: 6432 (wireproxy,
Postgres), 5432 (the server), 6488 (wireproxy, HTTP); `mcp_server.py` is tests/mcp_demo_server.py.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from fakellm import FakeLLM
from proxyprocess import ROOT, ProxyProcess
from wireproxy.config.rulefile import load_rules
from wireproxy.config.settings import load_config

DOCS = ROOT / "docs"
TESTED_LANGUAGES = {"toml", "sh", "python", "java"}
_BLOCK = re.compile(r"(?:<!-- test: (?P<kind>[\w-]+) -->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)^```", re.M | re.S)
BIN = Path(sys.executable).parent


def blocks(kind: str | None = None) -> list[tuple[str, str, str, str]]:
    """(id, kind, language, body) of every fenced block in docs/*.md."""
    out = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start("body"))
            if kind is None or m.group("kind") == kind:
                out.append((f"{path.name}:{line}", m.group("kind") or "", m.group("lang"), m.group("body")))
    return out


def params(kind: str):
    return [pytest.param(body, id=ident) for ident, _, _, body in blocks(kind)]


def test_every_block_is_tagged():
    untagged = [ident for ident, kind, lang, _ in blocks() if lang in TESTED_LANGUAGES and not kind]
    assert not untagged, f"untested command or config blocks: {untagged}"
    assert len(blocks("config")) >= 3 and len(blocks("sh")) >= 3 and len(blocks("python")) >= 3


def _workdir(tmp_path: Path) -> Path:
    (tmp_path / "rules").symlink_to(ROOT / "rules")
    return tmp_path


@pytest.mark.parametrize("body", params("config"))
def test_config_blocks_load(body, tmp_path):
    path = _workdir(tmp_path) / "wireproxy.toml"
    path.write_text(body)
    config = load_config(path)
    if config.rule_files:
        load_rules(config.rule_files)


@pytest.mark.parametrize("body", params("rules"))
def test_rule_blocks_load(body, tmp_path):
    path = tmp_path / "pack.toml"
    path.write_text(body)
    rules = load_rules([path])
    assert rules.rules or rules.masks


def _substitute(body: str, ports: dict[int, int]) -> str:
    return re.sub(r"\b(6432|5432|6488)\b", lambda m: str(ports[int(m.group(1))]), body).replace(
        "mcp_server.py", str(ROOT / "tests" / "mcp_demo_server.py"))


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def docs_proxy(pg):
    pg.psql("do $$ begin if not exists (select from pg_roles where rolname = 'postgres') then "
            "create role postgres superuser login; end if; end $$")
    proxy = ProxyProcess(["serve", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{pg.port}",
                          "--rules", "rules/default.toml", "--rules", "rules/pii.toml"])
    proxy.wait_for("ready")
    yield {6432: proxy.port, 5432: pg.port, 6488: 0}
    proxy.stop()


@pytest.mark.parametrize("body", params("sh"))
def test_sh_blocks_run(body, docs_proxy, tmp_path):
    _run(["bash", "-euo", "pipefail", "-c", _substitute(body, docs_proxy)], _workdir(tmp_path))


@pytest.mark.parametrize("body", params("python"))
def test_python_blocks_run(body, docs_proxy, tmp_path):
    done = _run([sys.executable, "-c", _substitute(body, docs_proxy)], _workdir(tmp_path))
    if "drop table" in body:
        assert "42" in done.stdout and "blocked: blocked by wireproxy rule no-drop" in done.stdout
    if "list_tools" in body:
        assert "run_shell" not in done.stdout and "query" in done.stdout     # llm.toml hides shell tools


@pytest.fixture(scope="module")
def http_proxy(tmp_path_factory):
    with FakeLLM("Hello from upstream") as upstream:
        tmp = tmp_path_factory.mktemp("docs-http")
        (tmp / "wireproxy.toml").write_text(textwrap.dedent(f"""\
            [[http]]
            listen = "127.0.0.1:0"
            upstream = "{upstream.url}"
            rules = ["{ROOT / 'rules' / 'llm.toml'}"]
            """))
        proxy = ProxyProcess(["serve", "--config", str(tmp / "wireproxy.toml")])
        yield {6488: proxy.ports("http")[0], 6432: 0, 5432: 0}
        proxy.stop()


@pytest.mark.parametrize("body", params("python-http"))
def test_http_client_blocks_run(body, http_proxy, tmp_path):
    done = _run([sys.executable, "-c", _substitute(body, http_proxy)], _workdir(tmp_path))
    assert "Hello from upstream" in done.stdout


def _jdbc_jar() -> str | None:
    found = sorted(glob.glob(os.path.expanduser("~/.m2/repository/org/postgresql/postgresql/*/postgresql-*.jar"))
                   + glob.glob("/usr/share/java/postgresql*.jar"))
    return found[-1] if found and shutil.which("java") else None


@pytest.mark.parametrize("body", params("java") if _jdbc_jar() else [])
def test_java_blocks_run(body, docs_proxy, tmp_path):
    (tmp_path / "Snippet.java").write_text(_substitute(body, docs_proxy))
    done = _run(["java", "-cp", _jdbc_jar(), "Snippet.java"], tmp_path)
    assert done.stdout.strip() == "42"


def _help(words: list[str]) -> str:
    return _run([str(BIN / "wireproxy"), *words, "--help"], ROOT).stdout


@pytest.mark.parametrize("body", params("sh-setup"))
def test_setup_blocks_name_real_files_and_flags(body):
    for path in re.findall(r"\b(deploy/[\w./-]+)", body):
        assert (ROOT / path).exists(), path
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line.split("#")[0]) if "wireproxy" in line else []
        if words and words[0].endswith("bin/wireproxy"):
            words[0] = "wireproxy"
        if not words or words[0] != "wireproxy":
            continue
        commands = [w for w in words[1:3] if not w.startswith("-")]
        text = _help(commands)
        for flag in (w.split("=")[0] for w in words if w.startswith("--")):
            assert flag in text, f"{flag} not in `wireproxy {' '.join(commands)} --help`"


@pytest.mark.parametrize("body", params("prometheus-rules"))
def test_alert_rules_name_real_metrics(body):
    from wireproxy.telemetry import metrics

    known = {m.name: m for m in vars(metrics).values() if isinstance(m, metrics._Metric)}
    names = re.findall(r"\b(wireproxy_\w+)", body)
    assert names
    for name in names:
        assert name in known, name
    exposition = metrics.REGISTRY.render()      # every label value a series starts with
    for name, labels in re.findall(r"\b(wireproxy_\w+)\{([^}]*)\}", body):
        for label, value in re.findall(r'(\w+)=~?"([^"]+)"', labels):
            assert label in known[name].labelnames, (name, label)
            for alternative in value.split("|"):
                if label != "code":                  # status codes appear as requests come
                    assert f'{name}{{{label}="{alternative}"' in exposition, (name, label, alternative)
