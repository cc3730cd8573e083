"""Where wireproxy keeps its files: one rule, used by `serve` and by every command that reads
what serve wrote (`sessions`, `keys`, `approvals`).

- Session logs: `--log-dir`, else the config's `[log] dir`. Without either, `serve` records
  nothing, and the readers look in ./wireproxy-sessions.
- The log key pair: `--key-file`, else `[log] key_file`, else `wireproxy.key` beside the log
  dir (in the directory that holds it); its public half is FILE.pub.
- The masking hash key: FILE.mask, beside the key file.
- The admin token: `[admin] token_file`, else `wireproxy-admin.token` beside the config file,
  else beside the key file, else in the working directory.

Flags win over the config file, the config file over the defaults. Paths in a config file are
relative to it (settings.load_config), paths on the command line to the working directory.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

DEFAULT_LOG_DIR = Path("wireproxy-sessions")
KEY_FILE_NAME = "wireproxy.key"
TOKEN_FILE_NAME = "wireproxy-admin.token"


def with_flags(log: Any, log_dir: str | Path | None = None, key_file: str | Path | None = None) -> Any:
    """A LogConfig with the command line's --log-dir and --key-file put over the file's."""
    changes = {}
    if log_dir:
        changes["dir"] = Path(log_dir).expanduser().resolve()
    if key_file:
        changes["key_file"] = Path(key_file).expanduser().resolve()
    return dataclasses.replace(log, **changes) if changes else log


def key_file_for(log: Any) -> Path | None:
    """The log key file: the one configured, else wireproxy.key beside the log dir (None with
    neither: nothing is recorded and hashes need no lasting key)."""
    if log.key_file is not None:
        return Path(log.key_file).resolve()
    if log.dir is not None:
        return Path(log.dir).resolve().parent / KEY_FILE_NAME
    return None


def mask_key_file_for(log: Any) -> Path | None:
    key_file = key_file_for(log)
    return key_file.with_name(key_file.name + ".mask") if key_file is not None else None


def reading_paths(log: Any) -> tuple[Path, Path]:
    """(log dir, key file) for the commands that read logs: the same rule, with the default
    log dir when none is configured."""
    if log.dir is None:
        log = dataclasses.replace(log, dir=DEFAULT_LOG_DIR)
    return Path(log.dir).resolve(), key_file_for(log)


def reading_command(log: Any, command: str = "wireproxy sessions list") -> str:
    """How to read these logs, as a person would type it: --key-file only when it is not where
    the rule would look anyway."""
    log_dir, key_file = reading_paths(log)
    text = f"{command} --log-dir {shlex.quote(str(log_dir))}"
    if key_file != log_dir.parent / KEY_FILE_NAME:
        text += f" --key-file {shlex.quote(str(key_file))}"
    return text
