"""Where the session logs and their key are, for every command that reads them: the flags, else
the config's [log], else the defaults; and the wrapper that turns a user's mistake into one line."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Callable, TextIO

from ..config.tomlfile import ConfigError, TomlFile
from ..sessionlog import SessionLogError

DEFAULT_LOG_DIR = "wireproxy-sessions"
DEFAULT_KEY_FILE = "wireproxy.key"


def command(func: Callable[[argparse.Namespace, TextIO], int]) -> Callable[[argparse.Namespace], int]:
    """User mistakes -> one line on stderr, exit 2."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args, sys.stdout)
        except (SessionLogError, ConfigError) as exc:
            print(f"wireproxy: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `... | head`
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0

    return run


def resolve_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(log dir, key file) from the flags, else the config's [log], else the defaults."""
    log_dir = key_file = None
    if getattr(args, "config", None):
        log_dir, key_file = _from_config(Path(args.config))
    if getattr(args, "log_dir", None):
        log_dir = Path(args.log_dir)
    if getattr(args, "key_file", None):
        key_file = Path(args.key_file)
    return log_dir or Path(DEFAULT_LOG_DIR), key_file or Path(DEFAULT_KEY_FILE)


def _from_config(path: Path) -> tuple[Path | None, Path | None]:
    config = TomlFile.load(path)
    table = config.data.get("log", {})
    if not isinstance(table, dict):
        raise ConfigError(path, config.line_of("log"), "log must be a table ([log])")
    found: list[Path | None] = []
    for key in ("dir", "key_file"):
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(path, config.line_of("log", key), f"log.{key} must be a string")
        found.append(path.parent / value if value else None)
    return found[0], found[1]
