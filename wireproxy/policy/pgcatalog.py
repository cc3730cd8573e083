"""What PostgreSQL 15 ships in pg_catalog: function names and catalog relations.

pg15_catalog.txt beside this file was read off a fresh PostgreSQL 15 cluster (`SELECT DISTINCT
proname FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace`, and the tables and views
of pg_catalog). A call of a built-in needs no catalog lookup of its body; a write into a catalog
relation is `catalog_write`. Names only: overloads differ in arguments, not in what they are.
"""

from __future__ import annotations

from pathlib import Path


def _load() -> dict[str, frozenset[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in Path(__file__).with_name("pg15_catalog.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[] "), [])
        else:
            current.extend(line.split())
    return {k: frozenset(v) for k, v in sections.items()}


_DATA = _load()
BUILTIN_FUNCTIONS: frozenset[str] = _DATA["functions"]
CATALOG_RELATIONS: frozenset[str] = _DATA["relations"]
BUILTIN_SCHEMAS = frozenset({"pg_catalog", "information_schema"})


def is_builtin_function(name: str) -> bool:
    """`name` as written in the facts (`f`, `schema.f`): a function PostgreSQL ships."""
    schema, dot, base = name.rpartition(".")
    if dot:
        return schema in BUILTIN_SCHEMAS
    return base in BUILTIN_FUNCTIONS


def is_catalog_relation(name: str) -> bool:
    """A relation of pg_catalog or information_schema, written with or without its schema
    (pg_catalog comes first on every search path unless a client places it later)."""
    schema, dot, base = name.rpartition(".")
    if dot:
        return schema in BUILTIN_SCHEMAS
    return base in CATALOG_RELATIONS
