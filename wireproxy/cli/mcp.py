"""`wireproxy mcp [--config FILE] [--rules FILE]... [--user NAME] -- COMMAND ARGS...`

Wraps a stdio MCP server with the rules: an MCP client's configuration changes only in the
command it launches (`wireproxy mcp -- npx some-server` instead of `npx some-server`). Rules
come from --rules, else from every rule file the config names, else the shipped default and
LLM packs. With a config whose [log] names a directory, the session is recorded there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import UsageError


def add_parser(commands) -> None:
    parser = commands.add_parser("mcp", help="wrap a stdio MCP server with the rules",
                                 usage="wireproxy mcp [--config FILE] [--rules FILE]... [--user NAME] -- COMMAND ARGS...")
    parser.add_argument("--config", type=Path, help="wireproxy.toml: its rule files and [log]")
    parser.add_argument("--rules", action="append", type=Path, help="rule file (repeatable)")
    parser.add_argument("--user", default=os.environ.get("WIREPROXY_USER"),
                        help="the identity the rules' `users` match (default: $WIREPROXY_USER)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the MCP server's command line, after --")
    parser.set_defaults(run=run_mcp)


def _rule_files(args, config) -> list[Path]:
    from ..config.packs import DEFAULT_RULES, RULES_DIR
    if args.rules:
        return [p.resolve() for p in args.rules]
    if config is not None and config.rule_files:
        return config.rule_files
    return [DEFAULT_RULES, RULES_DIR / "llm.toml"]


def run_mcp(args) -> int:
    import trio

    from ..config import load_config
    from ..config.rulebook import RuleBooks
    from ..http.rules import HttpRules
    from ..server import mask_hash_key, open_session_log

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("wireproxy mcp needs the server's command after --, e.g. wireproxy mcp -- python server.py")
    config = load_config(args.config) if args.config else None
    books = RuleBooks(mask_hash_key(config.log) if config is not None else b"")
    book = books.for_files(_rule_files(args, config))
    rules = HttpRules(book)
    session_log = open_session_log(config.log) if config is not None else None
    try:
        code = trio.run(_run, command, rules, books, session_log, args.user)
    except OSError as exc:
        raise UsageError(f"cannot start {command[0]}: {exc.strerror or exc}") from None
    return code


async def _run(command, rules, books, session_log, user) -> int:
    import trio

    from ..mcp.stdio import StdioBridge
    from ..sessionlog import LogUnavailable

    client_in = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    client_out = trio.lowlevel.FdStream(os.dup(sys.stdout.fileno()))
    async with trio.open_nursery() as services:
        recorder = None
        if session_log is not None:
            await services.start(session_log.run)
            try:
                recorder = session_log.open_session({"client_addr": "stdio", "user": user, "protocol": "mcp-stdio",
                                                     "upstream": " ".join(command)})
            except LogUnavailable as exc:
                raise UsageError(f"cannot record this session: {exc}") from None

        async def watch_rules():
            while True:
                await trio.sleep(1.0)
                books.reload_changed()

        services.start_soon(watch_rules)
        bridge = StdioBridge(lambda: rules.view(user), user=user,
                             record=recorder.record if recorder is not None else None,
                             session_id=recorder.id if recorder is not None else None)
        try:
            code = await bridge.run(command, client_in, client_out)
        finally:
            if recorder is not None:
                recorder.close({"reason": "closed", "calls": bridge.calls, "blocked": bridge.blocked})
        services.cancel_scope.cancel()
    return code
