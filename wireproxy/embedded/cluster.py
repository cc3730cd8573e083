"""A throwaway cluster: a fresh temp dir, a free loopback port, gone (processes and files)
after `stop()`. Server commands run with Popen's user=, so the pid we hold is the server
command itself, never a runuser in between. Readiness is read from the server (pg_ctl -w),
never guessed by sleeping.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .binaries import (OsUser, PgBinaries, find_binaries, free_port, reachable_temp_dir, server_os_user,
                       traversable, usable_by)

TEST_HBA = (
    "host all md5user 127.0.0.1/32 md5\n"
    "host all passworduser 127.0.0.1/32 password\n"
    "host all scramuser 127.0.0.1/32 scram-sha-256\n"
    "host all all 127.0.0.1/32 trust\n"
    "local all all trust\n"
)
TRUST_HBA = "host all all 127.0.0.1/32 trust\nlocal all all trust\n"


@dataclass
class LocalCluster:
    root: Path                       # the cluster's own temp dir: data, socket, server log
    port: int
    binaries: PgBinaries
    os_user: OsUser | None = None
    user: str = "postgres"           # the cluster's superuser role
    host: str = "127.0.0.1"
    password: str = "wireproxy-test-password"
    _stopped: bool = field(default=False, repr=False)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def server_log(self) -> Path:
        return self.root / "server.log"

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

    def run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        """A server command (initdb, pg_ctl) as the cluster's OS user."""
        extra = self.os_user.popen_args() if self.os_user else {}
        return subprocess.run(args, check=True, capture_output=True, text=True, cwd=self.root, **extra, **kwargs)

    @classmethod
    def start(cls, *, binaries: PgBinaries | None = None, parent: Path | None = None,
              settings: dict[str, str] | None = None, hba: str = TEST_HBA,
              tls: tuple[bytes, bytes] | None = None) -> "LocalCluster":
        """initdb and start a cluster in a new dir (under `parent` if given). On any failure,
        or a signal while it starts, whatever was started is stopped and the dir removed.
        `tls` (certificate PEM, key PEM) turns ssl on with that pair."""
        os_user = server_os_user()
        if parent is not None and os_user is not None:
            parent.chmod(parent.stat().st_mode | 0o011)          # the server user may pass through
            if not traversable(parent, os_user):
                parent = None                                    # e.g. under a 0700 TMPDIR
        base = parent or reachable_temp_dir(os_user)
        root = Path(tempfile.mkdtemp(prefix="pg-" if parent else "wireproxy-pg-", dir=base))
        cluster = None
        try:
            binaries = usable_by(binaries or find_binaries(), os_user, root)
            cluster = cls(root=root, port=free_port(), binaries=binaries, os_user=os_user)
            cluster._init(settings or {}, hba)
            if tls is not None:
                cluster._install_tls(*tls)
            cluster.run([binaries.tool("pg_ctl"), "-D", str(cluster.datadir), "-l", str(cluster.server_log),
                         "-w", "-t", "60", "start"], timeout=90)
            return cluster
        except BaseException as exc:
            if cluster is not None:
                detail = cluster._log_tail()
                cluster.stop()
                if isinstance(exc, subprocess.CalledProcessError):
                    raise RuntimeError(f"PostgreSQL did not start: {(exc.stderr or '').strip()} {detail}") from None
            else:
                shutil.rmtree(root, ignore_errors=True)
            raise

    def _init(self, settings: dict[str, str], hba: str) -> None:
        if self.os_user:
            os.chown(self.root, self.os_user.uid, self.os_user.gid)
        self.root.chmod(0o700)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user:
            os.chown(pwfile, self.os_user.uid, self.os_user.gid)
        self.run([self.binaries.tool("initdb"), "-D", str(self.datadir), "-U", self.user, "--auth=trust",
                  f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], timeout=120)
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "password_encryption": "'scram-sha-256'",
        }
        conf.update(settings)
        with open(self.datadir / "postgresql.conf", "a") as fh:
            fh.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
        (self.datadir / "pg_hba.conf").write_text(hba)

    def _install_tls(self, cert_pem: bytes, key_pem: bytes) -> None:
        """server.crt and server.key in the data dir (PostgreSQL wants the key 0600, its own)."""
        for name, data in (("server.crt", cert_pem), ("server.key", key_pem)):
            path = self.datadir / name
            path.write_bytes(data)
            path.chmod(0o600)
            if self.os_user:
                os.chown(path, self.os_user.uid, self.os_user.gid)
        with open(self.datadir / "postgresql.conf", "a") as fh:
            fh.write("ssl = on\n")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop the server (its processes are gone when this returns) and remove the dir."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.postmaster_pid() is not None:
                self.run([self.binaries.tool("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w",
                          "-t", "30", "stop"], timeout=60)
        except (OSError, subprocess.SubprocessError):
            pass
        finally:
            # pg_ctl failed, or a signal cut the start short before postmaster.pid was written:
            # no postmaster of this data dir may outlive us (its children exit when it dies).
            for pid in postmasters_of(self.datadir):
                _kill(pid)
            shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, *, dbname: str = "postgres", port: int | None = None) -> str:
        out = subprocess.run([self.binaries.tool("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                              self.dsn(dbname=dbname, port=port), "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout

    def _log_tail(self) -> str:
        try:
            lines = self.server_log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return ("(server log: " + " | ".join(lines[-3:]) + ")") if lines else ""


def postmasters_of(datadir: Path) -> list[int]:
    """Pids of running servers started on this data dir (read from /proc: `postgres -D DIR`)."""
    wanted = os.fsencode(str(datadir))
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and wanted in argv:
            found.append(int(entry.name))
    return found


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
