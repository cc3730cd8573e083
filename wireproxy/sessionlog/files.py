"""The session log's files: one per session, created 0600 and locked while it is recorded,
written and fdatasynced in one worker thread per flush, and the log dir proved writable."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from .encoder import SessionEncoder

try:
    import fcntl
except ImportError:  # pragma: no cover - not Unix
    fcntl = None  # type: ignore[assignment]

_fdatasync = getattr(os, "fdatasync", os.fsync)


class LogSession:
    """One session's file and what waits for the writer."""

    __slots__ = ("id", "sid", "path", "fd", "encoder", "failed", "closing", "result_budget",
                 "result_used", "results_truncated", "dropped", "header", "queue", "end")

    def __init__(self, sid: bytes, path: Path, result_budget: int):
        self.sid = sid
        self.id = sid.hex()
        self.path = path
        self.fd: int | None = None
        self.encoder: SessionEncoder | None = None
        self.failed: str | None = None
        self.closing = False
        # What waits for the writer: the header (until the first cycle), records, the end.
        self.header: dict[str, Any] | None = None
        self.queue: list[tuple[dict[str, Any], float]] = []
        self.end: tuple[Any, float] | None = None
        self.result_budget = result_budget
        self.result_used = 0
        self.results_truncated = False
        self.dropped = 0


def strerror(exc: OSError) -> str:
    return exc.strerror or str(exc) or errno.errorcode.get(exc.errno or 0, "error")


def prepare_dir(path: Path) -> str | None:
    """Create the log dir if need be and prove it writable. -> None, or what is wrong."""
    try:
        if path.exists() and not path.is_dir():
            return f"log dir {path} is not a directory"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = path / f".probe-{os.getpid()}-{os.urandom(4).hex()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.write(fd, b"\0")
            _fdatasync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as exc:
        return f"log dir {path}: {strerror(exc)}"
    return None


def _create(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # "still being recorded": readers, retention
        except OSError:
            pass
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_batch(out: dict[LogSession, list[bytes]], log_dir: Path) -> dict[LogSession, OSError]:
    errors: dict[LogSession, OSError] = {}
    created = False
    for session, chunks in out.items():
        try:
            if session.fd is None:
                session.fd = _create(session.path)
                created = True
            _write_all(session.fd, b"".join(chunks))
            _fdatasync(session.fd)
        except OSError as exc:
            errors[session] = exc
            close_fd(session)
    if created:
        try:
            dfd = os.open(log_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    return errors


def close_fd(session: LogSession) -> None:
    fd, session.fd = session.fd, None
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
