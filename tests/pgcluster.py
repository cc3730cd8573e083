"""The tests' (and bench/'s) throwaway PostgreSQL: `wireproxy.embedded`, the one implementation
the demo uses too. Kept as a module of its own so tests and bench import it by this name."""

from __future__ import annotations

from wireproxy.embedded import (LocalCluster as PgCluster, PgBinaries, PostgresNotFound,  # noqa: F401
                                available_binaries, find_binaries, free_port)


def server_bindir():
    """The folder holding initdb/pg_ctl of the install the tests use by default."""
    return find_binaries().bindir
