"""Where the session logs and their key are, for every command that reads them (the rule is
config.locations', the one serve writes by); and the wrapper that turns a user's mistake into one
line."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Callable, TextIO

from ..config import ConfigError, LogConfig, load_config
from ..config.locations import DEFAULT_LOG_DIR, KEY_FILE_NAME, reading_paths, with_flags
from ..sessionlog import SessionLogError

__all__ = ["DEFAULT_LOG_DIR", "KEY_FILE_NAME", "command", "log_settings", "resolve_paths"]


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
    """(log dir, key file) by the rule serve writes them by (config.locations): the flags, else
    the config's [log], else the defaults, the key beside the log dir."""
    return reading_paths(log_settings(args))


def log_settings(args: argparse.Namespace) -> LogConfig:
    """The config's [log] (with --config), with --log-dir and --key-file put over it."""
    config = getattr(args, "config", None)
    log = load_config(Path(config)).log if config else LogConfig()
    return with_flags(log, getattr(args, "log_dir", None), getattr(args, "key_file", None))
