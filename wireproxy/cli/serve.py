"""`wireproxy serve`: run the proxy."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config, load_config, parse_address
from .errors import UsageError


def add_parsers(commands) -> None:
    serve = commands.add_parser("serve", help="run the proxy")
    add_serve_flags(serve)
    serve.set_defaults(run=run_serve)


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="wireproxy.toml (default: built-in defaults)")
    parser.add_argument("--listen", help="HOST:PORT for the Postgres listener")
    parser.add_argument("--upstream", help="HOST:PORT of the PostgreSQL server")
    parser.add_argument("--rules", action="append", type=Path, help="rule file (repeatable)")
    parser.add_argument("--log-dir", type=Path, help="directory of encrypted session logs")
    parser.add_argument("--key-file", type=Path, help="session log key file")
    parser.add_argument("--admin", help="HOST:PORT of the admin API")


def config_from_args(args) -> Config:
    config = load_config(args.config) if args.config else Config.defaults()
    if args.listen or args.upstream or args.rules is not None:
        if not config.postgres:
            if not (args.listen and args.upstream):
                raise UsageError("--listen and --upstream are both needed when the config has no [[postgres]]")
            config.postgres = Config.defaults().postgres
        first = config.postgres[0]
        try:
            if args.listen:
                first.listen = parse_address(args.listen)
            if args.upstream:
                first.upstream = parse_address(args.upstream)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.rules is not None:
            for listener in config.postgres:
                listener.rules = [p.resolve() for p in args.rules]
    if args.log_dir:
        config.log.dir = args.log_dir.resolve()
    if args.key_file:
        config.log.key_file = args.key_file.resolve()
    if args.admin:
        try:
            config.admin.listen = parse_address(args.admin)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return config


def run_serve(args) -> int:
    import trio

    from ..server import ListenError, serve
    from ..telemetry.logs import install_stdlib_bridge
    install_stdlib_bridge()
    config = config_from_args(args)
    try:
        trio.run(serve, config)
    except (ListenError, BaseExceptionGroup) as exc:
        listen_errors = exc.subgroup(ListenError) if isinstance(exc, BaseExceptionGroup) else exc
        if listen_errors is None:
            raise
        while isinstance(listen_errors, BaseExceptionGroup):
            listen_errors = listen_errors.exceptions[0]
        raise UsageError(str(listen_errors)) from None
    return 0

