"""Micro-benchmarks of wireproxy's hot-path pieces, with timeit.

    .venv/bin/python bench/micro.py [--quick] [--json]

Each benchmark imports what it measures lazily and is skipped, with a note, when that piece
is not there (yet): the Postgres framer and codec (protocols.postgres), the pure relay core
(wireproxy.pg.relay.PgRelay), the policy's cached judge and cold facts extraction
(wireproxy.policy), and the masker's per-row cost (wireproxy.masking). pglast's own entry
points are measured too, as the reference the policy issue quotes.

Every figure is the best of several timeit repeats, in µs per operation (per message, per
row, per statement, per transaction: the `note` column says which).
"""

from __future__ import annotations

import argparse
import inspect
import json
import struct
import sys
import tempfile
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUICK = False
_TMP = tempfile.TemporaryDirectory(prefix="wireproxy-micro-")   # removed at exit


class Skip(Exception):
    pass


def per_op(fn, ops_per_call: int = 1, *, target_s: float = 0.2) -> float:
    """Best-of-repeats µs per operation of fn() (each call doing ops_per_call operations)."""
    timer = timeit.Timer(fn)
    number, elapsed = timer.autorange()          # calls for >= 0.2 s
    number = max(1, int(number * target_s / max(elapsed, 1e-9) / (4 if QUICK else 1)))
    best = min(timer.repeat(repeat=3 if QUICK else 5, number=number))
    return best / number / ops_per_call * 1e6


# ------------------------------------------------------------------------ wire bytes by hand
# Built with struct, not with the codec, so a codec change cannot skew its own input.

def msg(code: bytes, body: bytes) -> bytes:
    return code + struct.pack("!I", len(body) + 4) + body


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def datarow(values: list[bytes | None]) -> bytes:
    body = struct.pack("!h", len(values))
    for v in values:
        body += struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v
    return msg(b"D", body)


def rowdesc(names: list[str], type_oid: int = 25, table_oid: int = 0) -> bytes:
    body = struct.pack("!h", len(names))
    for i, n in enumerate(names, 1):
        body += cstr(n) + struct.pack("!IhIhih", table_oid, i if table_oid else 0, type_oid, -1, -1, 0)
    return msg(b"T", body)


COLUMNS = ["id", "secret", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10"]


def bench_row(g: int) -> list[bytes]:
    """One row of bench_rows (the shape pgbench_compare.py streams), in text format."""
    import hashlib
    return [str(g).encode(), hashlib.md5(str(g).encode()).hexdigest().encode(), str(g + 1).encode(),
            str(g * 2).encode(), f"row {g}".encode(), str(g % 97).encode(), b"t" if g % 2 == 0 else b"f",
            b"x", repr(g / 3).encode(), hashlib.md5(str(g + 1).encode()).hexdigest().encode()]


ROWS = [bench_row(g) for g in range(1, 1001)]
ROW_BYTES = b"".join(datarow(r) for r in ROWS)

PGBENCH_SQL = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
PGBENCH_PARAM_SQL = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
READY = msg(b"Z", b"I")
SELECT_RESULT = (rowdesc(["abalance"], 23, 16390) + datarow([b"0"]) + msg(b"C", cstr("SELECT 1")))


# ---------------------------------------------------------------------------------- codec

def b_framer_raw():
    from protocols.postgres import Framer
    f = Framer(passthrough={ord("D")})
    chunks = [ROW_BYTES[i:i + 65536] for i in range(0, len(ROW_BYTES), 65536)]

    def run():
        for c in chunks:
            f.feed(c)
    return per_op(run, len(ROWS)), "per DataRow, 10 columns, passed through as raw bytes (the hot path)"


def b_framer_messages():
    from protocols.postgres import Framer
    f = Framer()
    chunks = [ROW_BYTES[i:i + 65536] for i in range(0, len(ROW_BYTES), 65536)]

    def run():
        for c in chunks:
            f.feed(c)
    return per_op(run, len(ROWS)), "per DataRow, 10 columns, framed one message each"


def b_datarow_values():
    from protocols.postgres import DataRow
    rows = [DataRow(datarow(r)[5:]) for r in ROWS[:200]]

    def run():
        for r in rows:
            r.values
    return per_op(run, len(rows)), "per row: decode 10 columns"


def b_datarow_encode():
    from protocols.postgres import DataRow
    rows = ROWS[:200]

    def run():
        for r in rows:
            DataRow.from_values(r).encode()
    return per_op(run, len(rows)), "per row: encode 10 columns"


def b_query_decode():
    from protocols.postgres import Query
    body = msg(b"Q", cstr(PGBENCH_SQL))[5:]
    return per_op(lambda: Query.decode(body)), "Query.decode, pgbench -S statement"


# ------------------------------------------------------------------------- the relay core

def _relay(judge_factory=None):
    from wireproxy.pg.relay import PgRelay
    kwargs = {"upstream": "127.0.0.1:5432"}
    if judge_factory is not None:
        kwargs["judge_factory"] = judge_factory
    relay = PgRelay(**kwargs)
    startup = struct.pack("!i", 3 << 16) + cstr("user") + cstr("bench") + cstr("database") + cstr("bench") + b"\0"
    relay.client_data(struct.pack("!i", len(startup) + 4) + startup)
    relay.server_data(msg(b"R", struct.pack("!i", 0)) + msg(b"K", struct.pack("!ii", 1234, 5678)) + READY)
    relay.to_client.clear()
    relay.to_server.clear()
    relay.events.clear()
    return relay


def _drive(relay, client: bytes, server: bytes):
    def run():
        relay.client_data(client)
        relay.to_server.clear()
        relay.server_data(server)
        relay.to_client.clear()
        relay.events.clear()
    run()
    if relay.pending:
        raise Skip("relay kept pending entries after a whole transaction: input shape not understood")
    return run


def _tx(mode: str):
    if mode == "simple":
        return msg(b"Q", cstr(PGBENCH_SQL)), SELECT_RESULT + READY
    bind = msg(b"B", cstr("") + cstr("P0_1" if mode == "prepared" else "") + struct.pack("!h", 0)
               + struct.pack("!h", 1) + struct.pack("!i", 5) + b"48213" + struct.pack("!h", 0))
    tail = bind + msg(b"D", b"P" + cstr("")) + msg(b"E", cstr("") + struct.pack("!i", 0)) + msg(b"S", b"")
    if mode == "prepared":
        return tail, msg(b"2", b"") + SELECT_RESULT + READY
    parse = msg(b"P", cstr("") + cstr(PGBENCH_PARAM_SQL) + struct.pack("!h", 0))
    return parse + tail, msg(b"1", b"") + msg(b"2", b"") + SELECT_RESULT + READY


def b_relay(mode: str, with_policy: bool = False):
    def bench():
        factory = None
        note = "PgRelay, no judge"
        if with_policy:
            policy, how = _policy(_default_rules())
            factory = policy.session
            note = f"PgRelay with {how}"
        client, server = _tx(mode)
        run = _drive(_relay(factory), client, server)
        return per_op(run), f"per pgbench -S transaction (-M {mode}), pure object, no I/O; {note}"
    return bench


# --------------------------------------------------------------------------------- policy

def _default_rules() -> Path:
    """rules/default.toml, or (until it exists) an empty rule file: noted in the result."""
    path = REPO / "rules" / "default.toml"
    if path.exists():
        return path
    empty = Path(_TMP.name) / "empty-rules.toml"
    empty.write_text("# rules/default.toml absent: no rules\n")
    return empty


def _policy(rules: Path | None):
    """A Policy over the given rule file, however the constructor wants it."""
    try:
        import wireproxy.policy as P
    except ImportError as exc:
        raise Skip(f"wireproxy.policy not importable: {exc}") from None
    Policy = getattr(P, "Policy", None)
    if Policy is None:
        raise Skip("wireproxy.policy has no Policy")
    files = [rules] if rules else []
    attempts = []
    for name in ("from_files", "load", "from_paths"):
        if hasattr(Policy, name):
            attempts.append((f"Policy.{name}(files)", lambda n=name: getattr(Policy, n)(files)))
    loader = None
    for mod in ("wireproxy.config.rulefile", "wireproxy.policy.rulefile", "wireproxy.rulefile"):
        try:
            loader = __import__(mod, fromlist=["x"])
            break
        except ImportError:
            continue
    if loader is not None:
        for name in ("load_files", "load_rules", "load", "load_file"):
            fn = getattr(loader, name, None)
            if fn:
                attempts.append((f"Policy({loader.__name__}.{name}(files))",
                                 lambda fn=fn: Policy(fn(files))))
                attempts.append((f"Policy({loader.__name__}.{name}(file))",
                                 lambda fn=fn: Policy(fn(files[0]) if files else fn([]))))
    attempts.append(("Policy(files)", lambda: Policy(files)))
    attempts.append(("Policy()", lambda: Policy()))
    errors = []
    for how, make in attempts:
        try:
            policy = make()
            policy.session
            if rules is not None and rules.name == "empty-rules.toml":
                how += " [rules/default.toml absent: EMPTY rules]"
            elif rules is not None and rules.parent == REPO / "rules":
                how += f" [rules/{rules.name}]"
            return policy, how
        except Exception as exc:  # noqa: BLE001 - probing an API that may still be moving
            errors.append(f"{how}: {type(exc).__name__}: {exc}")
    raise Skip("could not build a Policy: " + "; ".join(errors)[:300])


def _session(rules):
    policy, how = _policy(rules)
    sess = policy.session("bench")
    return sess, how


def b_policy_cached():
    sess, how = _session(_default_rules())
    sess.query(PGBENCH_SQL)
    return per_op(lambda: sess.query(PGBENCH_SQL)), \
        f"Policy(...).session(user).query(sql), same text again (LRU hit); {how}"


def b_policy_cached_parse():
    sess, how = _session(_default_rules())
    if not hasattr(sess, "parse"):
        raise Skip("session has no parse()")
    sess.parse(PGBENCH_PARAM_SQL)
    return per_op(lambda: sess.parse(PGBENCH_PARAM_SQL)), "session.parse(sql), same text again (LRU hit)"


STATEMENTS = [
    "SELECT abalance FROM pgbench_accounts WHERE aid = {n};",
    "UPDATE pgbench_accounts SET abalance = abalance + {n} WHERE aid = 7;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, {n}, now());",
    "SELECT u.id, u.email, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id "
    "WHERE u.created_at > now() - interval '{n} days' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 50",
    "DELETE FROM sessions WHERE expires < now() - interval '{n} seconds'",
    "WITH moved AS (DELETE FROM queue WHERE id < {n} RETURNING *) INSERT INTO done SELECT * FROM moved",
    "DROP TABLE IF EXISTS scratch_{n}",
    "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
    "ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND c.oid > {n}",
]


def _facts_fn():
    try:
        import wireproxy.policy as P
    except ImportError as exc:
        raise Skip(f"wireproxy.policy not importable: {exc}") from None
    mods = [P]
    for name in ("facts", "sqlfacts", "pgfacts"):
        try:
            mods.append(__import__(f"wireproxy.policy.{name}", fromlist=["x"]))
        except ImportError:
            pass
    for mod in reversed(mods):
        for name in ("extract_facts", "facts_of", "sql_facts", "pg_facts", "statement_facts", "extract", "facts"):
            fn = getattr(mod, name, None)
            if callable(fn) and not inspect.isclass(fn) and not inspect.ismodule(fn):
                return fn, f"{mod.__name__}.{name}"
    raise Skip("no facts extraction function found in wireproxy.policy")


def b_facts_cold():
    fn, how = _facts_fn()
    counter = iter(range(10**9))
    statements = STATEMENTS

    def run():
        n = next(counter)
        for s in statements:
            fn(s.format(n=n))            # a new text each time: never a cache hit
    try:
        run()
    except TypeError as exc:
        raise Skip(f"{how}(sql) failed: {exc}") from None
    return per_op(run, len(statements), target_s=0.5), \
        f"{how}, per statement, cold (new text each call), mean over {len(statements)} statement shapes"


def b_facts_cold_sqlglot():
    fn, how = _facts_fn()
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    if "dialect" not in params:
        raise Skip(f"{how} takes no dialect")
    counter = iter(range(10**9))
    statements = STATEMENTS[:6]

    def run():
        n = next(counter)
        for st in statements:
            fn(st.format(n=n), dialect="mysql")
    run()
    return per_op(run, len(statements), target_s=0.5), \
        f"{how}(sql, dialect='mysql'): the sqlglot path (HTTP/MCP), per statement, cold"


def b_policy_cold():
    sess, how = _session(_default_rules())
    counter = iter(range(10**9))

    def run():
        n = next(counter)
        for s in STATEMENTS:
            sess.query(s.format(n=n))
    return per_op(run, len(STATEMENTS), target_s=0.5), \
        f"session.query(sql), per statement, cold (facts + decision, new text each call); {how}"


def b_pglast(entry: str):
    def bench():
        try:
            import pglast
            from pglast import parser
        except ImportError:
            raise Skip("pglast not installed") from None
        fn = {"parse_sql": pglast.parse_sql, "parse_sql_json": parser.parse_sql_json,
              "fingerprint": parser.fingerprint}[entry]
        stmts = [s.format(n=1) for s in STATEMENTS]

        def run():
            for s in stmts:
                fn(s)
        return per_op(run, len(stmts)), f"per statement, mean over {len(stmts)} shapes (reference)"
    return bench


# -------------------------------------------------------------------------------- masking

# bench_rows' columns and their types (text format), as RowDescription gives them.
COLUMN_TYPES = [23, 25, 23, 23, 25, 23, 16, 25, 701, 25]


def _masker_for(columns: tuple[str, ...], detectors: tuple[str, ...]):
    """(plan.rewrite, how) for bench_rows under one [[mask]] rule, via wireproxy.masking."""
    try:
        from wireproxy.masking.masker import Column, Masker
        from wireproxy.masking.spec import MaskSpec
    except ImportError as exc:
        raise Skip(f"wireproxy.masking.masker not importable: {exc}") from None
    spec = MaskSpec(id="bench", columns=columns, detectors=detectors, style="redact")
    um = Masker([spec]).for_user("bench")
    if um is None:
        raise Skip("Masker.for_user returned None for a rule that applies to everyone")
    plan = um.plan([Column(name=n, type_oid=t) for n, t in zip(COLUMNS, COLUMN_TYPES)])
    if plan is None:
        raise Skip("UserMasker.plan returned None: no column masked")
    return plan.rewrite, "Masker([MaskSpec]).for_user(u).plan(columns).rewrite(DataRow body)"


def b_mask(columns: tuple[str, ...], detectors: tuple[str, ...], what: str, planted: bool = False):
    def bench():
        call, how = _masker_for(columns, detectors)
        rows = [list(r) for r in ROWS[:500]]
        if planted:                    # an email in c5 of every row: detectors find and mask it
            for r in rows:
                r[4] = b"contact: user" + r[0] + b"@example.com"
        bodies = [datarow(r)[5:] for r in rows]
        first = call(bodies[0])
        if columns and first == bodies[0]:
            raise Skip(f"{how} left the row unchanged: nothing masked")

        def run():
            for b in bodies:
                call(b)
        return per_op(run, len(bodies)), f"per row, {what}; {how}"
    return bench


# ------------------------------------------------------------------------- session log

RECORD_SIMPLE = {"sql": PGBENCH_SQL, "protocol": "simple", "decision": "allow", "tag": "SELECT 1", "rows": 1,
                 "duration_ms": 0.41}
RECORD_EXTENDED = {"sql": PGBENCH_PARAM_SQL, "protocol": "extended", "params": ["48213"], "decision": "allow",
                   "tag": "SELECT 1", "rows": 1, "duration_ms": 0.41}


def b_record(entry: dict, per_flush: int):
    """SessionEncoder over one session's share of a flush: what the writer does per record on the
    trio thread (JSON, encryption, framing, chain), without the file write."""
    def bench():
        try:
            from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

            from wireproxy.sessionlog import SessionEncoder, new_session_id
            from wireproxy.sessionlog.format import MAGIC
        except ImportError as exc:
            raise Skip(f"wireproxy.sessionlog not importable: {exc}") from None
        enc = SessionEncoder(new_session_id(), X25519PrivateKey.generate().public_key())
        enc.start({"user": "bench", "database": "bench"})
        items = [(dict(entry), 1764067921.0 + i * 0.0001) for i in range(per_flush)]
        seal = getattr(enc, "seal", None)              # format 2: one frame per flush

        def run():
            out: list[bytes] = []
            enc.records(items, out)
            if seal is not None:
                out.append(seal())
        return per_op(run, per_flush), (f"per record, {per_flush} records per flush, format {MAGIC[-1]}; "
                                        "SessionEncoder.records (JSON, AES-GCM, frame, chain; no file I/O)")
    return bench


# ---------------------------------------------------------------------------------- main

BENCHMARKS = [
    ("framer: DataRow, raw passthrough", b_framer_raw),
    ("framer: DataRow, framed as messages", b_framer_messages),
    ("codec: DataRow.values (10 columns)", b_datarow_values),
    ("codec: DataRow.from_values + encode", b_datarow_encode),
    ("codec: Query.decode", b_query_decode),
    ("relay: -M simple transaction", b_relay("simple")),
    ("relay: -M extended transaction", b_relay("extended")),
    ("relay: -M prepared transaction", b_relay("prepared")),
    ("relay+policy: -M simple transaction", b_relay("simple", True)),
    ("relay+policy: -M extended transaction", b_relay("extended", True)),
    ("relay+policy: -M prepared transaction", b_relay("prepared", True)),
    ("policy: cached judge", b_policy_cached),
    ("policy: cached judge at Parse", b_policy_cached_parse),
    ("policy: judge cold", b_policy_cold),
    ("policy: facts extraction cold", b_facts_cold),
    ("policy: facts extraction cold, sqlglot", b_facts_cold_sqlglot),
    ("pglast.parse_sql (Python AST)", b_pglast("parse_sql")),
    ("pglast.parser.parse_sql_json", b_pglast("parse_sql_json")),
    ("pglast.parser.fingerprint", b_pglast("fingerprint")),
    ("masker: 1 of 10 columns by name", b_mask(("secret",), (), "column secret masked whole (redact), 9 others untouched")),
    ("masker: content detectors, clean rows", b_mask((), ("credit_card", "email", "us_ssn"),
                                                     "3 detectors over the 4 text columns, nothing found")),
    ("sessionlog: record, -M simple shape", b_record(RECORD_SIMPLE, 125)),
    ("sessionlog: record, -M extended shape", b_record(RECORD_EXTENDED, 125)),
    ("sessionlog: record, 1 per flush", b_record(RECORD_SIMPLE, 1)),
    ("masker: content detectors, 1 hit per row", b_mask((), ("credit_card", "email", "us_ssn"),
                                                        "3 detectors over the 4 text columns, an email in one", True)),
]


def main(argv: list[str] | None = None) -> int:
    global QUICK
    p = argparse.ArgumentParser(description="Micro-benchmarks of the hot path (µs per op).")
    p.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("-k", default="", help="only benchmarks whose name contains this")
    args = p.parse_args(argv)
    QUICK = args.quick
    results = []
    for name, fn in BENCHMARKS:
        if args.k and args.k not in name:
            continue
        row: dict = {"name": name}
        try:
            us, note = fn()
            row["us"] = us
            row["note"] = note
        except Skip as exc:
            row["skip"] = f"skipped: {exc}"
        except Exception as exc:  # noqa: BLE001 - one broken piece must not hide the others
            row["skip"] = f"error: {type(exc).__name__}: {exc}"[:300]
        results.append(row)
        if not args.json:
            print(f"{name:<42} {row['us']:>10.3f} µs  {row['note']}" if "us" in row
                  else f"{name:<42} {'–':>10}     {row['skip']}", flush=True)
    if args.json:
        print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
