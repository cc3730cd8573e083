"""deploy/Dockerfile checked without a container runtime (none runs on this machine): its base
image and steps parsed, its COPY sources present, its pip install run the same way in a fresh
venv, and its HEALTHCHECK command run against a wireproxy that installed copy serves."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from proxyprocess import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_shape():
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.12-slim")
    kinds = [k for k, _ in steps]
    assert kinds.count("HEALTHCHECK") == 1 and "USER" in kinds and kinds[-1] == "CMD"
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")   # runs unprivileged
    for kind, rest in steps:
        if kind == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd == ["serve", "--config", "/etc/wireproxy/wireproxy.toml"]


def _healthcheck() -> list[str]:
    rest = dict(instructions())["HEALTHCHECK"]
    return json.loads(rest[rest.index("CMD") + 3:].strip())


def test_install_steps_and_healthcheck(tmp_path, pg):
    # The image's steps, in a fresh venv: COPY the same paths, RUN the same pip install.
    build = tmp_path / "opt"
    build.mkdir()
    for kind, rest in instructions():
        if kind == "COPY" and not rest.startswith("deploy/"):
            *sources, dest = rest.split()
            for source in sources:
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, build / Path(source).name, symlinks=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(ROOT / source, build / Path(source).name)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    pip_runs = [rest for kind, rest in instructions() if kind == "RUN" and rest.startswith("pip install")]
    assert pip_runs == ["pip install --no-cache-dir ."]
    subprocess.run([str(python), "-m", "pip", "install", "-q", "."], cwd=build, check=True, timeout=300)

    # The container's config, with this machine's ports and paths.
    config = (ROOT / "deploy" / "container.toml").read_text()
    config = (config.replace("/var/lib/wireproxy", str(tmp_path / "data"))
                    .replace("0.0.0.0:6480", "127.0.0.1:0").replace("0.0.0.0:6432", "127.0.0.1:0")
                    .replace("db:5432", f"127.0.0.1:{pg.port}").replace("/opt/wireproxy", str(build)))
    (tmp_path / "wireproxy.toml").write_text(config)
    serve = subprocess.Popen([str(tmp_path / "venv" / "bin" / "wireproxy"), "serve", "--config",
                              str(tmp_path / "wireproxy.toml")], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        admin = None
        for line in serve.stderr:
            event = json.loads(line)
            if event.get("event") == "listening" and event.get("kind") == "admin":
                admin = event["address"]
            if event.get("event") == "ready":
                break
        assert admin is not None
        check = [str(python) if c == "python" else c.replace("127.0.0.1:6480", admin) for c in _healthcheck()]
        assert subprocess.run(check, timeout=30).returncode == 0
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    # and fails when nothing serves the health endpoint
    assert subprocess.run(check, timeout=30, capture_output=True).returncode != 0
