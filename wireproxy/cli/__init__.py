"""`wireproxy ...`: the command line. User mistakes end in one clear line and exit status 2."""

from __future__ import annotations

import argparse
import sys

from ..config import ConfigError
from ..sessionlog import SessionLogError
from . import approvals, ca, check, demo, mcp, serve, sessions, users
from .errors import UsageError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "run", None) or getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args) or 0
    except (ConfigError, UsageError, SessionLogError) as exc:
        print(f"wireproxy: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wireproxy", description="A data-path gateway for PostgreSQL and HTTP.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve.add_parsers(commands)
    demo.add_parser(commands)
    check.add_parser(commands)
    sessions.add_parsers(commands)
    approvals.add_parsers(commands)
    mcp.add_parser(commands)
    ca.add_parser(commands)
    users.add_parser(commands)
    return parser
