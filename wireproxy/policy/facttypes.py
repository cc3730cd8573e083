"""The fact types both extractors produce (pgfacts for PostgreSQL, sqlglotfacts for other
dialects) and the engine, rules and CLI consume. See facts.py for what they mean."""

from __future__ import annotations

from dataclasses import dataclass

# Statement kinds (DESIGN.md's vocabulary).
KINDS: tuple[str, ...] = (
    "select", "insert", "update", "delete", "merge", "copy_to", "copy_from", "drop", "truncate",
    "alter", "create", "grant", "revoke", "do", "call", "set", "transaction", "explain",
    "prepare", "execute", "other",
)

# Finer facts, carried as flags on a statement; a rule matches them with `flags = [...]`.
FLAGS: dict[str, str] = {
    "copy_program": "COPY ... TO/FROM PROGRAM: runs a shell command on the database server",
    "copy_file": "COPY ... TO/FROM a file on the database server",
    "alter_system": "ALTER SYSTEM: rewrites the server configuration",
    "superuser_role": "CREATE/ALTER ROLE (USER, GROUP) ... SUPERUSER",
    "bypassrls_role": "CREATE/ALTER ROLE ... BYPASSRLS",
    "replication_role": "CREATE/ALTER ROLE ... REPLICATION",
    "createrole_role": "CREATE/ALTER ROLE ... CREATEROLE",
    "createdb_role": "CREATE/ALTER ROLE ... CREATEDB",
    "security_definer": "CREATE/ALTER FUNCTION or PROCEDURE ... SECURITY DEFINER",
    "set_role": "SET [LOCAL] ROLE, SET SESSION AUTHORIZATION (also as a function's or role's SET "
                "clause), set_config('role' | 'session_authorization' | a computed name, ...), "
                "UPDATE pg_settings",
    "search_path": "SET search_path or set_config('search_path', ...)",
    "dynamic_sql": "SQL built at run time: PL/pgSQL EXECUTE (FOR ... IN EXECUTE, OPEN ... FOR "
                   "EXECUTE, RETURN QUERY EXECUTE) of a non-constant string, or a SQL-running "
                   "function (query_to_xml, ts_stat, dblink, ...) given a non-constant query",
    "opaque_code": "a DO block or function in a language wireproxy cannot read (not sql or "
                   "plpgsql: C, internal, plpython, plperl, ...)",
    "foreign_data": "foreign-data wrappers, foreign servers, user mappings, foreign tables, "
                    "IMPORT FOREIGN SCHEMA, CREATE EXTENSION dblink / *_fdw, CREATE/ALTER "
                    "SUBSCRIPTION (connects to another server)",
    "load_library": "LOAD 'library', or SET / ALTER ROLE ... SET of *_preload_libraries: loads a "
                    "shared library into the server",
    "drop_column": "ALTER TABLE ... DROP COLUMN",
    "deallocate": "DEALLOCATE or DISCARD ALL (forgets prepared statements)",
    "fastpath": "a FunctionCall protocol message (judged as SELECT function(...))",
    "cursor": "DECLARE name CURSOR FOR <query>: the query is judged as a statement of its own "
              "(its volume limits follow the cursor's FETCHes); `name` is the cursor",
    "fetch": "FETCH or MOVE from the cursor `name`",
    "catalog_write": "INSERT, UPDATE, DELETE, MERGE, TRUNCATE or COPY FROM into a system catalog "
                     "(pg_catalog, information_schema), whatever the WHERE",
    "rls_off": "ALTER TABLE ... DISABLE / NO FORCE ROW LEVEL SECURITY",
    "permissive_policy": "CREATE/ALTER POLICY (permissive) whose USING or WITH CHECK holds for "
                         "every row",
    "owner_to": "ALTER ... OWNER TO, REASSIGN OWNED: hands objects (and their privileges) over",
    "rewrite_rule": "CREATE RULE whose action writes (or DO INSTEAD NOTHING on a write), ALTER TABLE "
                    "... ENABLE [ALWAYS | REPLICA] RULE",
    "bulk_export": "database_to_xml, schema_to_xml, cursor_to_xml...: every table of a schema or "
                   "database folded into one value",
}


# The WHERE checks beyond literal tautologies (pgfacts/tautology.py); a rule's `where_checks`
# says which of them its `without_where` counts.
WHERE_CHECKS: dict[str, str] = {
    "self_subquery": "the table compared with itself: id IN (SELECT id FROM t), EXISTS over t "
                     "joined column to same column, USING t AS t2 WHERE t.id = t2.id, MERGE of t "
                     "with itself",
    "value_range": "a comparison every value of the column's type satisfies: name >= '', "
                   "x > '-infinity', beyond the 64-bit integers, length(x) >= 0",
    "catalog": "decided with the column's type and constraints from the catalog (looked up in "
               "band): id IS NOT NULL on a NOT NULL column, flag IN (true, false) on a NOT NULL "
               "boolean, n > -2147483649 on a smallint or integer column",
}


class SqlParseError(Exception):
    """The SQL could not be judged. `internal` is True when the fault is wireproxy's own (an
    unexpected exception while walking the tree): such SQL is always blocked."""

    def __init__(self, message: str, *, internal: bool = False):
        super().__init__(message)
        self.message = message
        self.internal = internal


_NO: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StatementFacts:
    kind: str
    tables: frozenset[str] = _NO       # every relation the statement reads or changes
    targets: frozenset[str] = _NO      # the relations it writes, drops, alters, grants on
    functions: frozenset[str] = _NO    # every function called, as written (schema kept)
    roles: frozenset[str] = _NO        # roles named (GRANT, REVOKE, CREATE/ALTER/DROP ROLE...)
    flags: frozenset[str] = _NO        # see FLAGS
    has_where: bool = False            # UPDATE/DELETE (or a MERGE action) has a condition
    tautological_where: bool = False   # ... but it is true for every row, or ignores the row
    has_limit: bool = False            # SELECT with LIMIT / FETCH FIRST (not LIMIT ALL)
    via: str = ""                      # "" for a statement of the string; else how it is nested
    name: str | None = None            # prepared-statement name (PREPARE, EXECUTE, DEALLOCATE)
    inner: tuple["StatementFacts", ...] = ()  # PREPARE: the facts of the prepared statement
    reads_all: frozenset[str] = _NO    # tables read in full: no bound (see pgfacts/bounds.py)
    copies: frozenset[str] = _NO       # tables copied in full into a relation (CTAS, views...)
    granted: frozenset[str] = _NO      # roles whose membership is granted (GRANT r TO, IN ROLE)
    where_checks: frozenset[str] = _NO  # extended checks a tautological WHERE needed
    where_catalog: tuple = ()          # catalog atoms that would make the WHERE every-row
    catalog_reads: tuple = ()          # (reads_all | copies, table, atoms): in full if confirmed

    @property
    def unbounded(self) -> bool:
        """An UPDATE or DELETE that reaches every row: no WHERE, or a WHERE that is constant or
        self-evidently true (`true`, `1=1`, `'t'`, `id = id`, `x OR true`, `$1`, ...)."""
        return self.kind in ("update", "delete") and (not self.has_where or self.tautological_where)

    def to_dict(self) -> dict:
        out: dict = {"kind": self.kind}
        if self.via:
            out["via"] = self.via
        for key in ("tables", "targets", "functions", "roles", "flags", "reads_all", "copies", "granted"):
            value = getattr(self, key)
            if value:
                out[key] = sorted(value)
        if self.kind in ("update", "delete"):
            out["where"] = ("tautology" if self.tautological_where else "yes") if self.has_where else "none"
            if self.where_checks:
                out["where_checks"] = sorted(self.where_checks)
        if self.has_limit:
            out["limit"] = True
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass(frozen=True, slots=True, eq=False)   # compared and hashed by identity (cache keys)
class QueryFacts:
    statements: tuple[StatementFacts, ...]   # in order; nested ones follow their statement
    stateful: bool = False                   # PREPARE/EXECUTE/DEALLOCATE: the session must look
    dialect: str = "postgres"
    kind_free: bool = False                  # (cache) no constant's value or kind was looked at
    routines: tuple[str, ...] = ()           # functions called that PostgreSQL does not ship
    catalog_tables: tuple[str, ...] = ()     # tables whose columns would decide a WHERE
    quiet_routines: tuple[str, ...] = ()     # routines called only where their rows go nowhere
    range_sensitive: bool = False            # (cache) valid under its normalized form for texts
                                             # without special constants only (pgfacts/keys.py)

    def to_list(self) -> list[dict]:
        return [s.to_dict() for s in self.statements]


POSTGRES_DIALECTS = frozenset({"postgres", "postgresql", "pg", ""})


def is_postgres(dialect: str | None) -> bool:
    return dialect is None or dialect.lower() in POSTGRES_DIALECTS


def catalog_tables_of(statements) -> tuple[str, ...]:
    """Tables whose column facts would decide something about these statements."""
    tables = {t for s in statements if s.where_catalog for t in s.targets}
    tables.update(table for s in statements for _, table, _ in s.catalog_reads)
    return tuple(sorted(tables))
