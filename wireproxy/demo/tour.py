"""The guided tour: each step runs real statements through wireproxy and shows what happened.

Every value shown comes from a real connection (psycopg, through the proxy or straight to the
server) or from a real command (`wireproxy check`, the session log reader): nothing is canned.
Between steps it waits for Enter when both ends are a terminal; otherwise it runs straight on.
"""

from __future__ import annotations

import io
import shlex
import subprocess
import sys
from pathlib import Path

import psycopg
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..sessionlog import Keyring, find_session, read_session
from ..cli.transcript import write_transcript
from .stack import DEMO_RULES, DEFAULT_RULES, DemoStack

APPLICATION = "wireproxy-demo-tour"
PEOPLE_QUERY = "SELECT id, email, phone, national_id, card_number FROM customers ORDER BY id LIMIT 3"
EXPORT_QUERY = "SELECT * FROM payments"
CHECKED = "UPDATE customers SET email = NULL WHERE true"


class Tour:
    def __init__(self, console: Console, stack: DemoStack, *, program: str = "wireproxy", pause: bool):
        self.console = console
        self.program = program
        self.stack = stack
        self.pause = pause
        self.steps = 0

    def run(self) -> None:
        with psycopg.connect(self.stack.dsn(direct=True), autocommit=True) as direct, \
                psycopg.connect(self.stack.dsn(application=APPLICATION), autocommit=True) as proxied:
            self.masked_results(direct, proxied)
            self.blocked_statements(direct, proxied)
            self.cut_export(direct, proxied)
        self.check_command()
        self.replay()

    # --- the steps ---------------------------------------------------------------------------

    def masked_results(self, direct, proxied) -> None:
        self.heading("Masked results", "The same SELECT, once straight to PostgreSQL and once through "
                     "wireproxy. rules/demo.toml masks card numbers and e-mails (partially), phones "
                     "(redacted) and national ids (a keyed hash: joins still work).")
        self.sql(PEOPLE_QUERY)
        held, got = direct.execute(PEOPLE_QUERY), proxied.execute(PEOPLE_QUERY)
        columns = [c.name for c in held.description]
        table = Table(header_style="bold")
        table.add_column("column")
        table.add_column("what the table holds (direct)", style="red")
        table.add_column("what a client gets through wireproxy", style="green")
        for held_row, got_row in zip(held.fetchall(), got.fetchall()):
            for name, real, masked in zip(columns, held_row, got_row):
                table.add_row(name, str(real), str(masked))
            table.add_section()
        self.console.print(table)

    def blocked_statements(self, direct, proxied) -> None:
        self.heading("Destructive statements are blocked", "rules/default.toml stops DROP, and UPDATE or "
                     "DELETE without a WHERE that selects rows. The statement never reaches the "
                     "server; the client gets SQLSTATE 42501 naming the rule, and the session goes on.")
        for statement in ("DROP TABLE payments", "DELETE FROM orders"):
            self.sql(statement)
            self.show_error(self.attempt(proxied, statement))
        orders = direct.execute("SELECT count(*) FROM orders").fetchone()[0]
        self.console.print(f"Still there, asked directly: orders has [bold]{orders:,}[/] rows, and "
                           f"payments still exists.")

    def cut_export(self, direct, proxied) -> None:
        self.heading("An unbounded export is cut", "demo-export-cap allows 500 rows of customer data per "
                     "result. wireproxy counts rows as they stream: past the limit no row reaches the "
                     "client, the query is cancelled on the server, and the client gets SQLSTATE 54000.")
        total = direct.execute("SELECT count(*) FROM payments").fetchone()[0]
        self.sql(EXPORT_QUERY)
        received, error = 0, None
        try:
            for _row in proxied.cursor().stream(EXPORT_QUERY):
                received += 1
        except psycopg.Error as exc:
            error = exc
        self.console.print(f"The table holds {total:,} payments; the client received [bold]{received:,}[/] "
                           f"rows, then:")
        self.show_error(error)
        after = proxied.execute("SELECT count(*) FROM payments").fetchone()[0]
        self.console.print(f"The session goes on: SELECT count(*) FROM payments -> {after:,}")

    def check_command(self) -> None:
        self.heading("Try a statement before it goes live: wireproxy check", "No database needed: the "
                     "decision, the rule that made it, and the facts wireproxy read from the SQL.")
        args = ["check", "--rules", _shown(DEFAULT_RULES), "--rules", _shown(DEMO_RULES), CHECKED]
        self.console.print(Text("$ " + shlex.join([self.program, *args]), style="bold cyan"))
        run = subprocess.run([sys.executable, "-m", "wireproxy.cli", *args], capture_output=True, text=True,
                             timeout=60)
        self.console.print(Text(run.stdout.rstrip() + run.stderr.rstrip()))
        self.console.print(f"(exit status {run.returncode}: 0 goes through, 1 would be stopped)")

    def replay(self) -> None:
        self.heading("The session, replayed from its encrypted log", "Every statement above was recorded: "
                     "AES-256-GCM under a key only the private key file opens, hash-chained and "
                     "sealed when the session ended. Result rows are recorded as the client got them.")
        stack = self.stack
        closed = stack.events.wait_for("connection.close", application_name=APPLICATION)
        stack.proxy.flush_session_log()
        read = read_session(find_session(stack.log_dir, closed["session"]), Keyring.load(stack.key_file))
        transcript = io.StringIO()
        write_transcript(read, transcript)
        paths = f"--log-dir {stack.log_dir} --key-file {stack.key_file}"
        self.console.print(Text(f"$ {self.program} sessions show {read.session_id} {paths}", style="bold cyan"))
        self.console.print(Panel(Text(transcript.getvalue().rstrip()), border_style="dim"))
        self.console.print(Text(f"$ {self.program} sessions verify {read.session_id} {paths}", style="bold cyan"))
        verdict = "green" if read.exit_code == 0 else "bold red"
        self.console.print(Text(f"{read.session_id}  {read.describe()}", style=verdict))

    # --- how things are shown ----------------------------------------------------------------

    def heading(self, title: str, explanation: str) -> None:
        if self.steps and self.pause:
            self.console.input("[dim]Enter for the next step…[/]")
        self.steps += 1
        self.console.print()
        self.console.rule(f"[bold]{self.steps}. {title}", align="left")
        self.console.print(explanation, style="dim")

    def sql(self, statement: str) -> None:
        self.console.print(Text(f"=> {statement}", style="bold cyan"))

    @staticmethod
    def attempt(conn, statement: str) -> psycopg.Error | None:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            return exc
        return None

    def show_error(self, error: psycopg.Error | None) -> None:
        if error is None:
            self.console.print(Text("it went through (it should not have)", style="bold red"))
            return
        line = Text("ERROR ", style="bold red")
        line.append(f"{error.sqlstate}: ", style="bold")
        line.append(str(error.diag.message_primary or error))
        self.console.print(line)


def _shown(path: Path) -> str:
    """A rule file as the user would type it: relative when under the working directory."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
