"""The admin API's bearer token: a file created 0600 on first run, compared in constant time."""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from ..config import ConfigError

MIN_LENGTH = 32


def ensure_token(path: Path) -> tuple[str, bool]:
    """The token in `path`, creating the file (0600) when it does not exist; (token, created)."""
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked into place: two instances starting
        # together agree on one token, and nobody reads a half-written one.
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, path)
            created = True
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
    return read_token(path, check_mode=True), created


def read_token(path: Path, *, check_mode: bool = False) -> str:
    try:
        if check_mode:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(path, None, f"the admin token file is open to other users (mode "
                                  f"{stat.S_IMODE(mode):04o}): chmod 600 it")
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(path, None, "admin token file not found (wireproxy serve creates it on first run)") from None
    except PermissionError:
        raise ConfigError(path, None, "cannot read the admin token file: permission denied") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read the admin token file: {exc.__class__.__name__}") from None
    if len(token) < MIN_LENGTH or not token.isprintable() or " " in token:
        raise ConfigError(path, None, f"the admin token must be one word of at least {MIN_LENGTH} characters")
    return token


def token_matches(presented: str | None, token: str) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token.encode("utf-8"))
