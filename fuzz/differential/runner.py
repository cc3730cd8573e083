"""The differential check: what the default pack decides against what PostgreSQL did.

For each statement: judge it with rules/default.toml as the relay would (looking up called
routines in the catalog, in band, and judging again), run it on the scratch database in a
transaction that is rolled back (observe.py), and compare:

- a statement with a dangerous effect that the pack lets through (allow or audit) is a MISS;
- a statement that ran with no effect but that the pack blocks or holds by a rule whose effect
  the observer can see is a FALSE BLOCK. Rules that stop a capability rather than an effect
  (dynamic SQL, opaque code, COPY TO, dblink...) are not counted: running the statement in a
  scratch transaction cannot show what it could reach.

Statements that fail on the server (errors, timeouts) have no effect and are only counted;
statements with transaction control are not run (they would end the rolled-back transaction).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from fuzz.differential.observe import Observer, install
from fuzz.differential.scratch import setup_sql
from wireproxy.config.rulefile import load_rules
from wireproxy.policy import Action, Policy, SqlParseError, column_lookup_sql, extract, routine_lookup_sql
from wireproxy.policy.columnbook import ColumnBook
from wireproxy.policy.routinebook import RoutineBook

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "rules" / "default.toml"
CAPABILITY_RULES = frozenset({"no-copy-out", "no-copy-program", "no-copy-server-file", "no-server-files",
                              "no-large-objects", "no-dblink", "no-foreign-data", "no-alter-system",
                              "no-grant-to-public", "no-dynamic-sql", "no-opaque-code", "no-load",
                              "parse-error", "no-server-access-roles", "no-bulk-export",
                              "no-credential-catalogs"})   # blocked wherever named, read or not
SCRATCH_DB = "wp_differential"


@dataclass
class Finding:
    sql: str
    effects: list[str]
    action: str
    rule: str | None


@dataclass
class Stats:
    tried: int = 0
    ran: int = 0
    failed: int = 0
    skipped: int = 0
    with_effect: int = 0
    held: int = 0
    effects: Counter = field(default_factory=Counter)
    misses: list[Finding] = field(default_factory=list)
    false_blocks: list[Finding] = field(default_factory=list)

    def summary(self) -> dict:
        return {"tried": self.tried, "ran": self.ran, "failed_on_server": self.failed, "skipped": self.skipped,
                "with_effect": self.with_effect, "held_or_blocked": self.held,
                "effects": dict(self.effects.most_common()), "misses": len(self.misses),
                "false_blocks": len(self.false_blocks)}


class Differential:
    def __init__(self, admin_dsn: str, dsn: str, rules: Path = DEFAULT):
        self.policy = Policy(load_rules([rules]))
        self.book = RoutineBook()   # the scratch database's routines and tables never change
        self.columns = ColumnBook()  # between statements (each is rolled back)
        self.lookup = psycopg.connect(dsn, autocommit=True)
        self.observer = Observer(dsn)
        self.stats = Stats()

    def judge(self, sql: str):
        judge = self.policy.session("fuzz")
        judge.routines = self.book
        judge.columns = self.columns
        decision = judge.query(sql)
        for _ in range(8):   # the relay's loop: in-band lookups, then judge again
            if decision.columns_needed:
                names = decision.columns_needed
                judge.learn_columns(names, self.lookup.execute(column_lookup_sql(names)).fetchall())
            elif decision.routines_needed:
                names = decision.routines_needed
                judge.learn_routines(names, self.lookup.execute(routine_lookup_sql(names)).fetchall())
            else:
                break
            decision = judge.query(sql)
        return decision

    def check(self, sql: str) -> None:
        stats = self.stats
        stats.tried += 1
        try:
            facts = extract(sql)
        except SqlParseError:
            stats.skipped += 1
            return
        if any(s.kind == "transaction" for s in facts.statements):
            stats.skipped += 1
            return
        decision = self.judge(sql)
        outcome = self.observer.run(sql)
        if not outcome.ran:
            stats.failed += 1
            return
        stats.ran += 1
        held = decision.action in (Action.BLOCK, Action.APPROVE)
        stats.held += held
        if outcome.effects:
            stats.with_effect += 1
            stats.effects.update(e.split(":", 1)[0] for e in outcome.effects)
            if not held:
                stats.misses.append(Finding(sql, sorted(outcome.effects), str(decision.action), decision.rule_id))
        elif held and decision.rule_id not in CAPABILITY_RULES and not _names_itself(facts):
            stats.false_blocks.append(Finding(sql, [], str(decision.action), decision.rule_id))

    def close(self) -> None:
        self.observer.close()
        self.lookup.close()


def _names_itself(facts) -> bool:
    """The observer runs as a superuser: giving CURRENT_USER a role attribute changes nothing."""
    return any(r in ("current_user", "session_user", "current_role") for s in facts.statements for r in s.roles)


def prepare_database(admin_dsn: str, dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
        conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(setup_sql())
    install(dsn)


def start_cluster():
    """A throwaway cluster with track_functions = all (tests/pgcluster.py)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import PgCluster
    return PgCluster.start(settings={"track_functions": "'all'"})


class _Stop:
    """Set by SIGINT/SIGTERM: the run ends after the statement in hand, and cleans up."""

    def __init__(self):
        self.set = False

    def __bool__(self) -> bool:
        return self.set


def _stop_on_signals() -> _Stop:
    import signal
    import threading

    stop = _Stop()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: setattr(stop, "set", True))
    return stop


def run(seconds: float, *, dsn_base: str | None = None, report: Path | None = None, seed_corpus: bool = True,
        examples: int | None = None) -> Stats:
    """Run the corpus, then generated and mutated statements until `seconds` have passed; or,
    with `examples`, exactly that many from hypothesis' derandomized sequence (the CI slice:
    the same statements on every machine, however fast)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from fuzz.differential.grammar import statements
    from fuzz.differential.mutate import load_corpus, mutations

    cluster = None
    if dsn_base is None:
        cluster = start_cluster()
        dsn_base = f"host={cluster.host} port={cluster.port} user={cluster.user}"
    admin, dsn = f"{dsn_base} dbname=postgres", f"{dsn_base} dbname={SCRATCH_DB}"
    try:
        prepare_database(admin, dsn)
        diff = Differential(admin, dsn)
        deadline = time.monotonic() + seconds
        stop = _stop_on_signals()
        corpus = load_corpus()
        if seed_corpus:
            for sql in corpus:
                diff.check(sql)

        @settings(max_examples=examples or 50, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), derandomize=examples is not None)
        @given(st.one_of(statements, mutations(corpus)))
        def batch(sql):
            if not stop and (examples is not None or time.monotonic() < deadline):
                diff.check(sql)

        if examples is not None:
            batch()
        while examples is None and not stop and time.monotonic() < deadline:
            batch()
        diff.close()
        if report is not None:
            report.write_text(json.dumps({"summary": diff.stats.summary(),
                                          "misses": [f.__dict__ for f in diff.stats.misses],
                                          "false_blocks": [f.__dict__ for f in diff.stats.false_blocks]}, indent=1))
        return diff.stats
    finally:
        if cluster is not None:
            cluster.stop()


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fuzz differential",
                                     description="Default rule pack vs what PostgreSQL actually does.")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to generate statements")
    parser.add_argument("--dsn", default=None, help="libpq keywords of a server to use (host, port, user); "
                                                    "default: start a throwaway cluster")
    parser.add_argument("--report", type=Path, default=None, help="write the summary and findings as JSON here")
    args = parser.parse_args(argv)
    stats = run(args.seconds, dsn_base=args.dsn, report=args.report)
    print(json.dumps(stats.summary(), indent=1))
    for f in stats.misses[:50]:
        print(f"MISS {f.effects} {f.action} {f.rule}: {f.sql}")
    for f in stats.false_blocks[:50]:
        print(f"FALSE BLOCK {f.action} {f.rule}: {f.sql}")
    return 1 if stats.misses or stats.false_blocks else 0
