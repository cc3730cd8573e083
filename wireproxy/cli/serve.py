"""`wireproxy serve`: run the proxy."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config, PostgresListener, load_config, parse_address
from ..config.locations import KEY_FILE_NAME, with_flags
from ..config.packs import RULES_DIR
from ..config.settings import parse_workers, workers_problem
from .errors import UsageError


def add_parsers(commands) -> None:
    defaults = Config.defaults().postgres[0]
    serve = commands.add_parser(
        "serve", help="run the proxy", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Run the proxy. With no --config it runs on built-in defaults: PostgreSQL clients on\n"
                    f"{defaults.listen}, the server at {defaults.upstream}, statements judged by the shipped\n"
                    f"{_shown(defaults.rules[0])} (blocks DROP, TRUNCATE, unbounded UPDATE/DELETE, COPY out, server\n"
                    f"files and programs; masks nothing: add rules/pii.toml for that), no recording, no\n"
                    f"admin API. Flags override the config file.",
        epilog="With no rule files at all (a [[postgres]] in --config without `rules`) statements pass\n"
               "unjudged and results unmasked: serve warns (rules.none) and proxies faithfully. An empty\n"
               "rule file judges nothing either, but still blocks SQL the parser rejects.\n"
               f"Logs and keys: --log-dir D records sessions into D and creates the key pair beside D\n"
               f"({KEY_FILE_NAME}, .pub); `wireproxy sessions list --log-dir D` finds both.\n"
               f"Shipped rule packs (default, pii, agents, demo, examples/): {RULES_DIR}")
    add_serve_flags(serve, defaults)
    serve.set_defaults(run=run_serve)


def add_serve_flags(parser: argparse.ArgumentParser, defaults: PostgresListener | None = None) -> None:
    defaults = defaults or Config.defaults().postgres[0]
    parser.add_argument("--config", type=Path, metavar="FILE", help="wireproxy.toml (default: built-in defaults)")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help=f"where PostgreSQL clients connect (default {defaults.listen})")
    parser.add_argument("--upstream", metavar="HOST:PORT",
                        help=f"the PostgreSQL server (default {defaults.upstream})")
    parser.add_argument("--rules", action="append", type=Path, metavar="FILE",
                        help=f"rule file, repeatable, in order (default {_shown(defaults.rules[0])})")
    parser.add_argument("--log-dir", type=Path, metavar="DIR",
                        help="record every session here, encrypted (default: [log] dir, else no recording)")
    parser.add_argument("--key-file", type=Path, metavar="FILE",
                        help=f"the log key (default: [log] key_file, else {KEY_FILE_NAME} beside --log-dir)")
    parser.add_argument("--admin", metavar="HOST:PORT",
                        help="serve the admin API (approvals, /healthz, /metrics) here (default: [admin] listen, else off)")
    parser.add_argument("--workers", metavar="N",
                        help='processes serving the same ports, "auto" for one per core (default: workers, else 1)')


def _shown(path: Path) -> str:
    """A shipped pack as the help names it: rules/default.toml, wherever it is installed."""
    return f"rules/{path.name}"


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
    config.log = with_flags(config.log, args.log_dir, args.key_file)
    if args.admin:
        try:
            config.admin.listen = parse_address(args.admin)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if getattr(args, "workers", None) is not None:
        try:
            config.workers = parse_workers(args.workers)
        except ValueError as exc:
            raise UsageError(f"--workers: {exc}") from None
    problem = workers_problem(config)
    if problem is not None:
        raise UsageError(problem)
    return config


def run_serve(args) -> int:
    import trio

    from ..server import ListenError, serve
    from ..telemetry.logs import install_stdlib_bridge
    install_stdlib_bridge()
    config = config_from_args(args)
    if config.workers > 1:
        return run_supervisor(config)
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



def run_supervisor(config: Config) -> int:
    """Several workers: everything a worker would refuse is refused here first, in one line,
    and the keys are made here once, before any worker starts."""
    import trio

    from ..config.rulebook import RuleBooks
    from ..server import Server
    from ..workers.sockets import ReserveError
    from ..workers.supervisor import supervise
    books = RuleBooks(bytes(32))        # the rule files first: a broken one creates no key files
    for listener in [*config.postgres, *config.http]:
        books.for_files(listener.rules)
    Server(config)         # then TLS, JWT keys, the approvals store, the log and token keys
    try:
        return trio.run(supervise, config)
    except ReserveError as exc:
        raise UsageError(str(exc)) from None
