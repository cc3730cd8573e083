"""A throwaway PostgreSQL cluster for tests and benchmarks: temp dir, free loopback port.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to an unprivileged
user (`postgres` if it exists, else `nobody`) and every server command runs through `runuser`.
Readiness is read from the server itself (pg_ctl -w waits for it to accept connections), never
guessed by sleeping. No pytest here: bench/ uses it too.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def server_bindir() -> Path:
    """The folder holding initdb/pg_ctl: PATH first, then what `pg_config --bindir` names."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if installed:
        return installed[-1].parent
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError("PostgreSQL server binaries not found (no initdb on PATH, no pg_config)") from exc
    bindir = Path(out.stdout.strip())
    if not (bindir / "initdb").exists():
        raise RuntimeError(f"no initdb in {bindir}")
    return bindir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL")


@dataclass
class PgCluster:
    root: Path
    port: int
    user: str = "postgres"          # the cluster's superuser role
    host: str = "127.0.0.1"
    password: str = "wireproxy-test-password"
    _os_user: str | None = None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def dsn(self, *, dbname: str = "postgres", user: str | None = None, port: int | None = None,
            password: str | None = None) -> str:
        dsn = f"host={self.host} port={port or self.port} dbname={dbname} user={user or self.user}"
        if password:
            dsn += f" password={password}"
        return dsn

    def url(self, *, dbname: str = "postgres", user: str | None = None, port: int | None = None,
            password: str | None = None) -> str:
        auth = user or self.user
        if password:
            auth += f":{password}"
        return f"postgresql://{auth}@{self.host}:{port or self.port}/{dbname}"

    def _cmd(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", self._os_user, "--", *args] if self._os_user else args

    def run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self._cmd(args), check=True, capture_output=True, text=True, **kwargs)

    @classmethod
    def start(cls, *, settings: dict[str, str] | None = None) -> "PgCluster":
        bindir = server_bindir()
        os_user = _run_as()
        root = Path(tempfile.mkdtemp(prefix="wireproxy-pg-"))
        cluster = cls(root=root, port=free_port(), _os_user=os_user)
        if os_user:
            entry = pwd.getpwnam(os_user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        pwfile = root / "pwfile"
        pwfile.write_text(cluster.password + "\n")
        if os_user:
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        cluster.run([str(bindir / "initdb"), "-D", str(cluster.datadir), "-U", cluster.user,
                     "--auth=trust", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"])
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(cluster.port),
            "unix_socket_directories": f"'{root}'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "password_encryption": "'scram-sha-256'",
        }
        conf.update(settings or {})
        with open(cluster.datadir / "postgresql.conf", "a") as fh:
            fh.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
        # trust for the superuser; real auth methods for the roles the auth tests create.
        (cluster.datadir / "pg_hba.conf").write_text(
            "host all md5user 127.0.0.1/32 md5\n"
            "host all passworduser 127.0.0.1/32 password\n"
            "host all scramuser 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n"
            "local all all trust\n"
        )
        cluster.run([str(bindir / "pg_ctl"), "-D", str(cluster.datadir), "-l", str(root / "server.log"),
                     "-w", "-t", "60", "start"])
        return cluster

    def stop(self) -> None:
        try:
            self.run([str(server_bindir() / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"])
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, *, dbname: str = "postgres", port: int | None = None) -> str:
        out = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                              self.dsn(dbname=dbname, port=port), "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout
