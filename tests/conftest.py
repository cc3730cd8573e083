"""Fixtures shared by every test: a real PostgreSQL and wireproxy processes in front of it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgcluster import PgCluster  # noqa: E402
from proxyprocess import ProxyProcess  # noqa: E402

EMPTY_RULES = 'mode = "enforce"\n'


def slow_examples(short: int, long: int = 20_000) -> int:
    """Hypothesis budget: a short slice in CI, the long run with WIREPROXY_SLOW=1."""
    return long if os.environ.get("WIREPROXY_SLOW") else short


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster.start()
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
