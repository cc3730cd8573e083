"""Retention: delete the oldest session logs past a maximum age or a maximum total size.

Runs on the proxy host, which holds no private key: age and order come from each file's last
write (mtime), never from its contents. A log whose lock is held (its session is still being
recorded, by this process or another one sharing the dir) is never deleted.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from .format import SUFFIX

try:
    import fcntl
except ImportError:  # pragma: no cover - not Unix
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("wireproxy.sessionlog")


@dataclass
class _Log:
    path: Path
    mtime: float
    size: int


def _delete_unless_open(path: Path) -> bool:
    """Unlink `path` unless a writer holds its lock. -> whether it was deleted."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return True
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)


def apply_retention(log_dir: str | os.PathLike, *, max_age: float | None = None, max_bytes: int | None = None,
                    now: float | None = None, keep: Collection[Path] = ()) -> list[Path]:
    """Delete logs older than `max_age` seconds, then the oldest until the dir's logs total at
    most `max_bytes` (open logs count toward the total but are never deleted). Paths in `keep`
    are never deleted either. -> the deleted paths."""
    if max_age is None and max_bytes is None:
        return []
    now = time.time() if now is None else now
    keep = {Path(p) for p in keep}
    logs: list[_Log] = []
    try:
        entries = list(os.scandir(log_dir))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.endswith(SUFFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        logs.append(_Log(Path(entry.path), st.st_mtime, st.st_size))
    logs.sort(key=lambda log: (log.mtime, log.path.name))
    deleted: list[Path] = []
    remaining: list[_Log] = []
    for log in logs:
        if (max_age is not None and now - log.mtime > max_age and log.path not in keep
                and _try_delete(log.path)):
            deleted.append(log.path)
        else:
            remaining.append(log)
    if max_bytes is not None:
        total = sum(log.size for log in remaining)
        for log in remaining:
            if total <= max_bytes:
                break
            if log.path in keep or not _try_delete(log.path):
                continue
            deleted.append(log.path)
            total -= log.size
    if deleted:
        logger.info("retention deleted %d session log(s) from %s", len(deleted), log_dir)
    return deleted


def _try_delete(path: Path) -> bool:
    try:
        return _delete_unless_open(path)
    except OSError as exc:
        logger.warning("retention could not delete %s: %s", path, exc.strerror or exc)
        return False
