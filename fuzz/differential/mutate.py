"""Mutations of the seed corpus (fuzz/corpus/*.sql): the same statement, spelled otherwise.

Each mutation keeps what the statement does: keyword and identifier case, comments and odd
whitespace between tokens, quoted or schema-qualified table names, and wrappers that nest the
statement (CTE, EXPLAIN ANALYZE, PREPARE/EXECUTE, DO with a constant EXECUTE or a computed one,
a function body). Only text outside string literals and dollar quotes is touched.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from hypothesis import strategies as st

from fuzz.differential.scratch import PLAIN, SENSITIVE

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
_QUOTED = re.compile(r"('(?:[^']|'')*'|\$[a-z_]*\$.*?\$[a-z_]*\$|\"[^\"]*\")", re.S | re.I)
_TABLE = re.compile(r"\b(" + "|".join(SENSITIVE + PLAIN) + r")\b")


def load_corpus() -> list[str]:
    out = []
    for path in sorted(CORPUS.glob("*.sql")):
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("--"):
                out.append(line)
    return out


def _outside_quotes(sql: str, change) -> str:
    parts = _QUOTED.split(sql)
    return "".join(p if i % 2 else change(p) for i, p in enumerate(parts))


def _case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def _comments(rng: random.Random, text: str) -> str:
    return re.sub(r" ", lambda m: rng.choice([" ", " /* wp */ ", "\n", "\t", " -- x\n", "  "]), text)


def _tables(rng: random.Random, text: str) -> str:
    return _TABLE.sub(lambda m: rng.choice([m.group(1), f'"{m.group(1)}"', f"public.{m.group(1)}",
                                            f'public."{m.group(1)}"', m.group(1).upper()]), text)


def _wrap(rng: random.Random, sql: str) -> str:
    quoted = sql.replace("'", "''")
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    choices = [f"DO $wp$BEGIN EXECUTE '{quoted}'; END$wp$", f"SELECT 1; {sql}",
               f"DO $wp$BEGIN EXECUTE 'SELECT 1; ' || '{quoted}'; END$wp$"]
    if head in ("SELECT", "DELETE", "UPDATE", "INSERT", "MERGE", "WITH"):
        choices.append(f"PREPARE wp2 AS {sql}; EXECUTE wp2")
        choices.append(f"EXPLAIN ANALYZE {sql}")
    if head in ("DELETE", "UPDATE", "INSERT"):
        choices.append(f"WITH w AS ({sql} RETURNING 1) SELECT count(*) FROM w")
    return rng.choice(choices)


def mutate(sql: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        step = rng.choice(["case", "comments", "tables", "wrap", "none"])
        if step == "case":
            sql = _outside_quotes(sql, lambda p: _case(rng, p))
        elif step == "comments":
            sql = _outside_quotes(sql, lambda p: _comments(rng, p))
        elif step == "tables":
            sql = _outside_quotes(sql, lambda p: _tables(rng, p))
        elif step == "wrap" and "$wp$" not in sql:
            sql = _wrap(rng, sql)
    return sql


def mutations(corpus: list[str]):
    """A hypothesis strategy: a corpus statement, mutated."""
    return st.tuples(st.sampled_from(corpus), st.randoms(use_true_random=False)).map(lambda p: mutate(p[0], p[1]))
