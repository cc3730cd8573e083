"""A non-editable install carries the shipped rule packs: a wheel built from the tree, installed
alone into an empty directory, run from elsewhere, finds rules/default.toml and every other pack."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              ".hypothesis", "bench")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("install")
    tree = work / "tree"
    shutil.copytree(ROOT, tree, symlinks=True, ignore=SKIP)     # never build inside the checkout
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(tree)],
                   check=True, timeout=300, capture_output=True)
    (wheel,) = (work / "dist").glob("wireproxy-*.whl")
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=300, capture_output=True)
    return target


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_the_wheel_holds_every_shipped_pack(installed):
    shipped = sorted(p.relative_to(ROOT / "rules").as_posix() for p in (ROOT / "rules").rglob("*.toml"))
    packaged = sorted(p.relative_to(installed / "wireproxy" / "rules").as_posix()
                      for p in (installed / "wireproxy" / "rules").rglob("*.toml"))
    assert packaged == shipped and "default.toml" in packaged and "pii.toml" in packaged
    assert not (installed / "wireproxy" / "rules").is_symlink()          # real files, not a link back


def test_an_installed_wireproxy_finds_its_packs_from_anywhere(installed, tmp_path):
    where = run_installed(installed, tmp_path, "-c", "import wireproxy.config as c, wireproxy.demo.stack as d; "
                          "print(c.DEFAULT_RULES); print(d.DEMO_RULES)")
    assert where.returncode == 0, where.stderr
    default, demo = where.stdout.split()
    assert Path(default) == (installed / "wireproxy" / "rules" / "default.toml").resolve() and Path(demo).exists()
    check = run_installed(installed, tmp_path, "-m", "wireproxy.cli", "check", "DROP TABLE customers")
    assert check.returncode == 1 and "no-drop" in check.stdout, check.stdout + check.stderr
    pii = installed / "wireproxy" / "rules" / "pii.toml"
    check = run_installed(installed, tmp_path, "-m", "wireproxy.cli", "check", "--rules", str(pii), "SELECT 1")
    assert check.returncode == 0, check.stdout + check.stderr

