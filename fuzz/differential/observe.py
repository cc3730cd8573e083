"""Run one statement in a transaction that is rolled back, and say what it actually did.

The effects (strings, `kind:object`) are the dangerous ones of issue 11, observed on the
database itself rather than read from the SQL:

    dropped:REL / column_dropped:REL      objects or columns gone, renamed or replaced
    wiped:TABLE                           every row deleted or updated (but the one whose name is
                                          NULL, which a comparison on the name skips)
    read_all:TABLE                        every marker of a sensitive table in the result
                                          (rows, notices), however it was folded
    copied:TABLE                          ... in a relation the statement created or filled
    credential_read                       a password hash of pg_authid in the result
    role_attr:ROLE:ATTR                   a role gained SUPERUSER, CREATEROLE, BYPASSRLS...
    member:ROLE:OF                        a role joined a superuser or predefined role
    rls_opened:TABLE                      bob or app_owner sees every row of accounts
    owner:OBJECT                          an object changed hands
    rule_attached:REL                     a rewrite rule that writes or replaces the statement
    secdef:FUNC                           a SECURITY DEFINER function appeared
    role_switched                         current_user differs after the statement
    preload_libraries                     a *_preload_libraries setting was stored
    server_file_read                      postgresql.conf's contents in the result

Bounded DML, grants of table privileges, new plain tables, indexes and the like are not
effects. Functions called (pg_stat_xact_user_functions, track_functions = all) are reported
beside the effects, for the record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg.types.string import TextLoader

from fuzz.differential.scratch import ROW_SEPARATOR, ROWS, SENSITIVE, markers

PRIVILEGED = frozenset({"postgres", "pg_read_all_data", "pg_write_all_data", "pg_read_server_files",
                        "pg_write_server_files", "pg_execute_server_program", "pg_signal_backend",
                        "pg_checkpoint", "pg_monitor", "pg_read_all_settings", "pg_read_all_stats",
                        "pg_stat_scan_tables"})
_ATTRS = ("rolsuper", "rolcreaterole", "rolbypassrls", "rolreplication")
_REWRITES = re.compile(r"\bDO\s+(INSTEAD\b|(ALSO\s+)?\(?\s*(INSERT|UPDATE|DELETE)\b)", re.I)
ACCOUNT_ROWS = len(ROWS)

SNAPSHOT = """
SELECT json_build_object(
 'rels', (SELECT json_object_agg(c.oid::regclass::text, json_build_array(c.relkind, c.relowner::regrole::text,
          c.relrowsecurity, c.relforcerowsecurity,
          (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)))
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'wp_observe') AND n.nspname NOT LIKE 'pg_toast%'
            AND c.relkind IN ('r', 'v', 'm', 'p', 'S', 'f')),
 'roles', (SELECT json_object_agg(rolname, json_build_array(rolsuper, rolcreaterole, rolbypassrls, rolreplication))
           FROM pg_authid),
 'members', (SELECT json_agg(json_build_array(roleid::regrole::text, member::regrole::text)) FROM pg_auth_members),
 'procs', (SELECT json_object_agg(p.oid::regprocedure::text, json_build_array(p.proowner::regrole::text, p.prosecdef))
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'wp_observe')),
 'schemas', (SELECT json_object_agg(nspname, nspowner::regrole::text) FROM pg_namespace),
 'rules', (SELECT json_agg(json_build_array(r.ev_class::regclass::text, r.rulename, r.ev_enabled,
                                              pg_catalog.pg_get_ruledef(r.oid)))
           FROM pg_rewrite r WHERE r.rulename <> '_RETURN' AND r.ev_class >= 16384),
 'settings', (SELECT json_agg(setconfig::text) FROM pg_db_role_setting),
 'contents', wp_observe.contents(),
 'user', current_user,
 'visible', json_build_object('bob', wp_observe.visible('bob'), 'app_owner', wp_observe.visible('app_owner')))
"""

# Pending per-backend counters survive a rollback until flushed: compare before and after.
CALLS = ("SELECT json_object_agg(funcname, calls) FROM pg_catalog.pg_stat_xact_user_functions "
         "WHERE schemaname <> 'wp_observe'")

VISIBLE = """
CREATE FUNCTION wp_observe.visible(who text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint; me text := current_user;
BEGIN
  EXECUTE format('SET LOCAL ROLE %I', who);
  BEGIN
    SELECT count(*) INTO n FROM public.accounts;
  EXCEPTION WHEN others THEN n := -1;
  END;
  EXECUTE format('SET LOCAL ROLE %I', me);
  RETURN n;
END$$;
"""


@dataclass
class Outcome:
    ran: bool                        # the statement succeeded (no error)
    effects: set[str] = field(default_factory=set)
    calls: dict = field(default_factory=dict)
    error: str = ""


class Observer:
    """Runs statements on one superuser connection to the scratch database."""

    def __init__(self, dsn: str, *, timeout_ms: int = 2000):
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.timeout_ms = timeout_ms
        self.notices: list[str] = []
        self.conn.add_notice_handler(lambda diag: self.notices.append(diag.message_primary or ""))
        for name in ("timestamptz", "timestamp", "date", "numeric", "interval"):
            self.conn.adapters.register_loader(name, TextLoader)   # '-infinity' and friends as text
        self.base = self._snapshot_in_transaction()
        self.sizes = {rel: int(body.split(":", 1)[0]) for rel, body in self.base["contents"].items()
                      if body != "unreadable"}
        self.hashes = [r[0] for r in self.conn.execute("SELECT rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL")]
        conf = self.conn.execute("SHOW config_file").fetchone()[0]
        self.conf_probe = "listen_addresses" if conf else None

    def _snapshot_in_transaction(self) -> dict:
        with self.conn.transaction(force_rollback=True):
            return self.conn.execute(SNAPSHOT).fetchone()[0]

    def run(self, sql: str) -> Outcome:
        self.notices.clear()
        output: list[str] = []
        try:
            with self.conn.transaction(force_rollback=True):
                self.conn.execute(f"SET LOCAL statement_timeout = {self.timeout_ms}")
                calls_before = self.conn.execute(CALLS).fetchone()[0] or {}
                try:
                    cur = self.conn.execute(sql)
                    while True:
                        if cur.description is not None:
                            output.extend(" ".join(str(v) for v in row) for row in cur.fetchall())
                        if not cur.nextset():
                            break
                except psycopg.Error as exc:
                    return Outcome(False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                user = self.conn.execute("SELECT current_user").fetchone()[0]
                self.conn.execute("RESET SESSION AUTHORIZATION; RESET ALL")
                self.conn.execute(f"SET LOCAL statement_timeout = {self.timeout_ms * 5}")
                after = self.conn.execute(SNAPSHOT).fetchone()[0]
                after["user"] = user
                calls = {f: n - calls_before.get(f, 0) for f, n in (self.conn.execute(CALLS).fetchone()[0] or {}).items()
                         if n > calls_before.get(f, 0)}
        except psycopg.Error as exc:   # the rollback itself failed: the statement broke the session
            return Outcome(False, error=f"session: {exc}")
        text = "\n".join(output + self.notices)
        return Outcome(True, self._effects(after, text), calls)

    def _effects(self, after: dict, text: str) -> set[str]:
        base = self.base
        out: set[str] = set()
        _relations(base, after, out)
        _rows(self.sizes, base, after, out)
        _markers(base, after, text, out)
        _roles(base, after, out)
        if any(h and h in text for h in self.hashes):
            out.add("credential_read")
        if self.conf_probe and "listen_addresses" in text and "postgresql" in text.lower():
            out.add("server_file_read")
        if after.get("user") != base.get("user"):
            out.add("role_switched")
        return out

    def close(self) -> None:
        self.conn.close()


def _relations(base: dict, after: dict, out: set[str]) -> None:
    before_rels, after_rels = base["rels"] or {}, after["rels"] or {}
    for rel, info in before_rels.items():
        now = after_rels.get(rel)
        if now is None or now[0] != info[0]:
            out.add(f"dropped:{rel}")
            continue
        if now[4] < info[4]:
            out.add(f"column_dropped:{rel}")
        if now[1] != info[1]:
            out.add(f"owner:{rel}")
    for schema, owner in (base["schemas"] or {}).items():
        if (after["schemas"] or {}).get(schema, owner) != owner:
            out.add(f"owner:{schema}")
    for proc, info in (base["procs"] or {}).items():
        now = (after["procs"] or {}).get(proc)
        if now is None:
            out.add(f"dropped:{proc}")
        elif now[0] != info[0]:
            out.add(f"owner:{proc}")
    for proc, info in (after["procs"] or {}).items():
        if info[1] and not (base["procs"] or {}).get(proc, [None, False])[1]:
            out.add(f"secdef:{proc}")
    before_rules = {tuple(r) for r in base["rules"] or ()}
    for rule in after["rules"] or ():
        if tuple(rule) not in before_rules and rule[2] != "D" and _REWRITES.search(rule[3] or ""):
            out.add(f"rule_attached:{rule[0]}")
    if any("preload_libraries" in s for s in after["settings"] or () if s not in (base["settings"] or ())):
        out.add("preload_libraries")


def _row_keys(body: str | None) -> dict[str, tuple[str, bool]]:
    """id -> (xmin, name is NULL) of a table's rows ("xmin/(id,name,...)")."""
    out: dict[str, tuple[str, bool]] = {}
    if not body or body == "unreadable" or ":" not in body:
        return out
    for row in body.split(":", 1)[1].split(ROW_SEPARATOR):
        xmin, _, text = row.partition("/")
        ident, _, rest = text[1:].partition(",")
        if xmin != "-":
            out[ident] = (xmin, rest.startswith(","))
    return out


def _rows(sizes: dict, base: dict, after: dict, out: set[str]) -> None:
    """Every row deleted or updated, but those whose name is NULL (which a comparison on the
    name skips: `name >= ''` is as unbounded as `true`)."""
    for rel, size in sizes.items():
        if size < 10:
            continue
        body = (after["contents"] or {}).get(rel)
        if body is None or body == "unreadable":
            continue
        before, now = _row_keys(base["contents"][rel]), _row_keys(body)
        if not before:
            continue
        untouched = [k for k, (xmin, null_name) in before.items()
                     if not null_name and k in now and now[k][0] == xmin]
        if not untouched:
            out.add(f"wiped:{rel}")


def _markers(base: dict, after: dict, text: str, out: set[str]) -> None:
    for table in SENSITIVE:
        wanted = markers(table)
        if _share(wanted, text) == 1.0:
            out.add(f"read_all:{table}")
        for rel, body in (after["contents"] or {}).items():
            if rel == table or body == "unreadable":
                continue
            before = (base["contents"] or {}).get(rel, "")
            if _share(wanted, body) == 1.0 and _share(wanted, before) < 1.0:
                out.add(f"copied:{table}")


def _share(wanted: list[str], text: str) -> float:
    if not text:
        return 0.0
    return sum(1 for m in wanted if m in text) / len(wanted)


def _roles(base: dict, after: dict, out: set[str]) -> None:
    before_roles, after_roles = base["roles"] or {}, after["roles"] or {}
    for role, attrs in after_roles.items():
        old = before_roles.get(role, [False] * len(_ATTRS))
        for name, was, now in zip(_ATTRS, old, attrs):
            if now and not was:
                out.add(f"role_attr:{role}:{name}")
    before_members = {tuple(m) for m in base["members"] or ()}
    for role, member in (tuple(m) for m in after["members"] or ()):
        if (role, member) not in before_members and (role in PRIVILEGED or (after_roles.get(role) or [False])[0]):
            out.add(f"member:{member}:{role}")
    for who, count in (after["visible"] or {}).items():
        if count > (base["visible"] or {}).get(who, count) and count >= ACCOUNT_ROWS:
            out.add("rls_opened:accounts")   # every row: RLS off, or a policy that is always true


def install(dsn: str) -> None:
    """Create the observer's helpers (once per scratch database)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(VISIBLE)
