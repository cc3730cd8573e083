"""rules/default.toml against attacks (with evasions) and against benign look-alikes."""

from __future__ import annotations

from pathlib import Path

import pytest

from wireproxy.policy import Action, Policy
from wireproxy.config.rulefile import load_rules

DEFAULT = Path(__file__).resolve().parents[3] / "rules" / "default.toml"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy(load_rules([DEFAULT]))


BLOCKED = [
    # drop, with every kind of dressing
    ("DROP TABLE users", "no-drop"),
    ("drop table users", "no-drop"),
    ("DrOp TaBlE UsErS", "no-drop"),
    ("/* a */ DROP /* b */ TABLE /* c */ users /* d */", "no-drop"),
    ("DROP/**/TABLE/**/users", "no-drop"),
    ("-- comment\nDROP TABLE users", "no-drop"),
    ("/* nested /* comment */ DROP TABLE x */ DROP TABLE users", "no-drop"),
    ("SELECT 1; DROP TABLE users", "no-drop"),
    ("SELECT 'a;b'; DROP TABLE users; SELECT 2", "no-drop"),
    ('DROP TABLE "users"', "no-drop"),
    ('DROP TABLE U&"\\0075sers"', "no-drop"),
    ("DROP TABLE IF EXISTS public.users CASCADE", "no-drop"),
    ("DROP SCHEMA public CASCADE", "no-drop"),
    ("DROP DATABASE prod", "no-drop"),
    ("DROP OWNED BY app", "no-drop"),
    ("DROP FUNCTION f()", "no-drop"),
    ("ALTER TABLE users DROP COLUMN email", "no-drop-column"),
    # truncate
    ("TRUNCATE users", "no-truncate"),
    ("truncate table only users restart identity cascade", "no-truncate"),
    ("DO $$ BEGIN EXECUTE 'TRUNCATE users'; END $$", "no-truncate"),
    ("DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE users'; END $$", "no-truncate"),
    ("DO $b$ BEGIN EXECUTE $q$TRUNCATE users$q$; END $b$", "no-truncate"),
    ("DO $$ BEGIN EXECUTE E'TRUNCATE \\x75sers'; END $$", "no-truncate"),
    ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ TRUNCATE users $$", "no-truncate"),
    ("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS 'BEGIN TRUNCATE users; END'", "no-truncate"),
    ("SELECT query_to_xml('TRUNCATE users', true, false, '')", "no-truncate"),
    # unbounded writes
    ("DELETE FROM users", "no-unbounded-write"),
    ("delete from users where true", "no-unbounded-write"),
    ("DELETE FROM users WHERE 1=1", "no-unbounded-write"),
    ("DELETE FROM users WHERE 't'", "no-unbounded-write"),
    ("DELETE FROM users WHERE 'yes'::boolean", "no-unbounded-write"),
    ("DELETE FROM users WHERE id = id", "no-unbounded-write"),
    ("DELETE FROM users WHERE users.id = id", "no-unbounded-write"),
    ("DELETE FROM users WHERE NOT false", "no-unbounded-write"),
    ("DELETE FROM users WHERE 1 < 2", "no-unbounded-write"),
    ("DELETE FROM users WHERE 'a' = 'a'", "no-unbounded-write"),
    ("DELETE FROM users WHERE name = 'x' OR true", "no-unbounded-write"),
    ("DELETE FROM users WHERE id IS NULL OR id IS NOT NULL", "no-unbounded-write"),
    ("DELETE FROM users WHERE name LIKE '%'", "no-unbounded-write"),
    ("DELETE FROM users WHERE $1", "no-unbounded-write"),
    ("DELETE FROM users WHERE id = $1 OR $2", "no-unbounded-write"),
    ("DELETE FROM users WHERE EXISTS (SELECT 1)", "no-unbounded-write"),
    ("DELETE FROM users USING (SELECT 1 AS one) s WHERE one = 1", "no-unbounded-write"),
    ("UPDATE users SET admin = true", "no-unbounded-write"),
    ("UPDATE users SET admin = true WHERE 2 > 1", "no-unbounded-write"),
    ("update users set admin = true where /* x */ 1 /* y */ = /* z */ 1", "no-unbounded-write"),
    ("WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d", "no-unbounded-write"),
    ("WITH d AS (DELETE FROM users RETURNING id) INSERT INTO log SELECT id FROM d", "no-unbounded-write"),
    ("EXPLAIN ANALYZE DELETE FROM users", "no-unbounded-write"),
    ("EXPLAIN (ANALYZE) DELETE FROM users", "no-unbounded-write"),
    ("EXPLAIN (ANALYZE true) DELETE FROM users", "no-unbounded-write"),
    ("EXPLAIN (ANALYZE on) DELETE FROM users", "no-unbounded-write"),
    ("EXPLAIN (ANALYZE 1) DELETE FROM users", "no-unbounded-write"),
    ("EXPLAIN ANALYZE VERBOSE DELETE FROM users", "no-unbounded-write"),
    ("EXPLAIN (ANALYSE, FORMAT JSON) UPDATE users SET a = 1", "no-unbounded-write"),
    ("MERGE INTO users u USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE", "no-unbounded-write"),
    ("MERGE INTO users u USING s ON u.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE", "no-unbounded-write"),
    ("CREATE RULE r AS ON INSERT TO log DO ALSO DELETE FROM users", "no-unbounded-write"),
    ("DO $$ BEGIN DELETE FROM users; END $$", "no-unbounded-write"),
    ("DO $$ DECLARE yes boolean := true; BEGIN DELETE FROM users WHERE yes; END $$", "no-unbounded-write"),
    ("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN UPDATE users SET a = 1; END $$",
     "no-unbounded-write"),
    ("CREATE FUNCTION f() RETURNS int BEGIN ATOMIC DELETE FROM users; SELECT 1; END", "no-unbounded-write"),
    ("PREPARE p AS DELETE FROM users", "no-unbounded-write"),
    ("SELECT query_to_xml('DELETE FROM users RETURNING 1', true, false, '')", "no-unbounded-write"),
    # bulk export
    ("COPY users TO STDOUT", "no-copy-out"),
    ("copy (select * from users) to stdout with (format csv)", "no-copy-out"),
    ("COPY users TO '/tmp/users.csv'", "no-copy-out"),
    ("COPY users FROM PROGRAM 'id'", "no-copy-program"),
    ("COPY users FROM '/etc/passwd'", "no-copy-server-file"),
    # server files and large objects
    ("SELECT pg_read_file('/etc/passwd')", "no-server-files"),
    ("select PG_CATALOG.PG_READ_FILE('x')", "no-server-files"),
    ('select "pg_read_file"(\'x\')', "no-server-files"),
    ('select pg_catalog."pg_read_binary_file"(\'x\')', "no-server-files"),
    ("SELECT * FROM pg_ls_dir('.')", "no-server-files"),
    ("SELECT pg_ls_logdir()", "no-server-files"),
    ("select pg_stat_file('postgresql.conf')", "no-server-files"),
    ("select (select pg_read_file('x'))", "no-server-files"),
    ("WITH q AS (SELECT pg_ls_dir('.')) SELECT * FROM q", "no-server-files"),
    ("DO $$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $$", "no-server-files"),
    ("DO $$ DECLARE v text; BEGIN v := pg_read_file('/etc/passwd'); END $$", "no-server-files"),
    ("CREATE VIEW v AS SELECT pg_read_file('x')", "no-server-files"),
    ("PREPARE p AS SELECT pg_read_file($1)", "no-server-files"),
    ("SELECT lo_import('/etc/passwd')", "no-large-objects"),
    ("select lo_export(1234, '/tmp/x')", "no-large-objects"),
    ("SELECT pg_catalog.lo_get(1)", "no-large-objects"),
    ("SELECT lo_put(1, 0, 'x')", "no-large-objects"),
    # other servers
    ("SELECT * FROM dblink('host=10.0.0.1', 'SELECT 1') AS t(a int)", "no-dblink"),
    ("SELECT dblink_exec('host=x', 'SELECT 1')", "no-dblink"),
    ("CREATE EXTENSION dblink", "no-foreign-data"),
    ("create extension postgres_fdw", "no-foreign-data"),
    ("CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw", "no-foreign-data"),
    ("CREATE FOREIGN DATA WRAPPER w", "no-foreign-data"),
    ("CREATE USER MAPPING FOR app SERVER s", "no-foreign-data"),
    ("IMPORT FOREIGN SCHEMA public FROM SERVER s INTO x", "no-foreign-data"),
    # privilege
    ("ALTER SYSTEM SET archive_command = 'curl evil'", "no-alter-system"),
    ("alter system reset all", "no-alter-system"),
    ("ALTER ROLE app SUPERUSER", "no-privileged-roles"),
    ("alter user app with superuser", "no-privileged-roles"),
    ("CREATE ROLE r SUPERUSER LOGIN", "no-privileged-roles"),
    ("create user u bypassrls", "no-privileged-roles"),
    ("CREATE ROLE r REPLICATION", "no-privileged-roles"),
    ("GRANT SELECT ON users TO PUBLIC", "no-grant-to-public"),
    ('GRANT SELECT ON users TO "public"', "no-grant-to-public"),
    ("grant usage on schema s to app, PuBlIc", "no-grant-to-public"),
    ("GRANT ALL ON ALL TABLES IN SCHEMA public TO public", "no-grant-to-public"),
    ("GRANT EXECUTE ON FUNCTION f() TO PUBLIC", "no-grant-to-public"),
    ("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC", "no-grant-to-public"),
    ("GRANT pg_execute_server_program TO app", "no-server-access-roles"),
    ("CREATE ROLE x IN ROLE pg_read_server_files", "no-server-access-roles"),
    ("SET ROLE postgres", "no-set-role"),
    ("set local role admin", "no-set-role"),
    ("SET SESSION AUTHORIZATION postgres", "no-set-role"),
    ("SELECT set_config('role', 'postgres', false)", "no-set-role"),
    ("select pg_catalog.set_config('ROLE', 'postgres', true)", "no-set-role"),
    ("SELECT set_config('session_authorization', 'postgres', false)", "no-set-role"),
    ("UPDATE pg_settings SET setting = 'postgres' WHERE name = 'role'", "no-set-role"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET role = postgres AS 'select 1'", "no-set-role"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'select 1'", "no-security-definer"),
    ("ALTER FUNCTION f() SECURITY DEFINER", "no-security-definer"),
    # code wireproxy cannot read
    ("DO $$ DECLARE t text := 'users'; BEGIN EXECUTE 'DELETE FROM ' || t; END $$", "no-dynamic-sql"),
    ("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'users'); END $$", "no-dynamic-sql"),
    ("CREATE FUNCTION f(q text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE q; END $$", "no-dynamic-sql"),
    ("SELECT query_to_xml(q, true, false, '') FROM queries", "no-dynamic-sql"),
    ("DO LANGUAGE plpython3u $$ import os; os.system('id') $$", "no-opaque-code"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE c AS '/tmp/x.so', 'f'", "no-opaque-code"),
    ("LOAD '/tmp/evil.so'", "no-load"),
    # unparseable
    ("DROP TABLE", "parse-error"),
    ("selec 1", "parse-error"),
    ("SELECT 1; DROP TABLE", "parse-error"),
]

BENIGN = [
    "SELECT 1",
    "select * from users where id = 1",
    'SELECT drop_date, "delete", "truncate", "drop" FROM events',
    "SELECT 'DROP TABLE users'",
    "SELECT $$DROP TABLE users$$",
    "SELECT $tag$ it's DROP TABLE users $tag$",
    "select E'DROP TABLE \\' users'",
    "-- DROP TABLE users\nSELECT 1",
    "/* DROP TABLE users */ SELECT 1",
    "/* nested /* DROP TABLE x */ still comment */ SELECT 1",
    "SELECT 'pg_read_file(''/etc/passwd'')'",
    "INSERT INTO users (name) VALUES ('DROP TABLE x') RETURNING id",
    "UPDATE users SET name = 'x' WHERE id = 5",
    "UPDATE users SET name = $1 WHERE id = $2",
    "DELETE FROM sessions WHERE expires < now()",
    "DELETE FROM t WHERE id = $1",
    "DELETE FROM t WHERE id = 1 AND true",
    "UPDATE t SET a = a + 1 WHERE id IN (1, 2, 3)",
    "update t set x = 1 where id = 1 or false",
    "DELETE FROM t WHERE 1 = 2",
    "DELETE FROM t USING u WHERE u.tid = t.id AND u.banned",
    "COPY users FROM STDIN",
    "copy users (a, b) from stdin with (format csv, header)",
    "CREATE TEMP TABLE tmp_x (a int) ON COMMIT DROP",
    "CREATE TEMPORARY TABLE tmp_y AS SELECT 1 AS a",
    "CREATE TABLE t (a int, drop_date date)",
    "ALTER TABLE t ADD COLUMN c int",
    "ALTER TABLE t ALTER COLUMN c SET DEFAULT 0",
    "CREATE INDEX CONCURRENTLY ON users (name)",
    "EXPLAIN (ANALYZE false) DELETE FROM users",
    "EXPLAIN (ANALYZE off) DELETE FROM users",
    "EXPLAIN DELETE FROM users",
    "EXPLAIN SELECT * FROM users",
    "EXPLAIN ANALYZE SELECT * FROM users WHERE id = 1",
    "BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY",
    "SAVEPOINT a", "RELEASE SAVEPOINT a", "ROLLBACK TO SAVEPOINT a",
    "BEGIN; INSERT INTO t VALUES (1); COMMIT",
    "SET search_path TO public", "SET statement_timeout = 0", "SET client_encoding TO 'UTF8'",
    "SET TIME ZONE 'UTC'", "RESET ALL", "RESET ROLE", "SET ROLE NONE", "SHOW server_version",
    "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;",
    "DISCARD ALL", "DEALLOCATE ALL",
    "select current_setting('search_path')",
    "SELECT pg_catalog.set_config('search_path', '', false);",
    "GRANT SELECT ON users TO alice",
    "REVOKE ALL ON users FROM PUBLIC",
    "CREATE ROLE app LOGIN PASSWORD 'x'",
    "ALTER ROLE app NOSUPERUSER NOBYPASSRLS",
    "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b'",
    "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t WHERE id = 1; END $$",
    "DO $$ BEGIN RAISE NOTICE 'DROP TABLE users'; END $$",
    "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$",
    "DO $$ DECLARE n int; BEGIN SELECT count(*) INTO n FROM t; END $$",
    "PREPARE q(int) AS SELECT * FROM users WHERE id = $1",
    "VACUUM ANALYZE users", "ANALYZE users", "LISTEN ch", "NOTIFY ch, 'drop table users'",
    "SELECT * FROM users LIMIT 10",
    "LOCK TABLE users IN SHARE MODE",
    "WITH x AS (SELECT 1) SELECT * FROM x",
    "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r",
    "WITH u AS (UPDATE t SET a = 1 WHERE id = 3 RETURNING *) SELECT * FROM u",
    "INSERT INTO t SELECT * FROM u",
    "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a",
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a "
    "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)",
    "SELECT lower(name), count(*) FROM users GROUP BY 1",
    "SELECT pg_catalog.pg_get_userbyid(1), pg_catalog.format_type(23, -1)",
    "select pg_catalog.version()", "select current_schema()", "show standard_conforming_strings",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE false",
    # pgbench
    "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
    "UPDATE pgbench_accounts SET abalance = abalance + -2311 WHERE aid = 81231;",
    "UPDATE pgbench_tellers SET tbalance = tbalance + 123 WHERE tid = 7;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 81231, 123, CURRENT_TIMESTAMP);",
    "BEGIN;", "END;", "vacuum pgbench_branches", "select count(*) from pgbench_branches",
    "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c "
    "join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) "
    "cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) "
    "left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) "
    "left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) "
    "where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1",
    # psql \d, \dt, \l
    """SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;""",
    """SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;""",
    """SELECT c.relchecks, c.relkind, c.relhasindex, c.relhasrules, c.relhastriggers, c.relrowsecurity,
c.relforcerowsecurity, false AS relhasoids, c.relispartition,
pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ')
, c.reltablespace, CASE WHEN c.reloftype = 0 THEN '' ELSE c.reloftype::pg_catalog.regtype::pg_catalog.text END,
c.relpersistence, c.relreplident, am.amname
FROM pg_catalog.pg_class c
 LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid)
LEFT JOIN pg_catalog.pg_am am ON (c.relam = am.oid)
WHERE c.oid = '16384';""",
    """SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
  WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table'
  WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;""",
    """SELECT
  d.datname as "Name",
  pg_catalog.pg_get_userbyid(d.datdba) as "Owner",
  pg_catalog.pg_encoding_to_char(d.encoding) as "Encoding",
  pg_catalog.array_to_string(d.datacl, E'\\n') AS "Access privileges"
FROM pg_catalog.pg_database d
ORDER BY 1;""",
    # psycopg TypeInfo
    """SELECT
    typname AS name, oid, typarray AS array_oid,
    oid::regtype::text AS regtype, typdelim AS delimiter
FROM pg_type t
WHERE t.oid = to_regtype($1)
ORDER BY t.oid""",
]


def _driver_queries() -> list[str]:
    """The introspection queries asyncpg sends, taken from the installed driver itself."""
    from asyncpg import introspection
    return [v for k, v in vars(introspection).items()
            if isinstance(v, str) and k.isupper() or k.startswith("_TYPEINFO") and isinstance(v, str)]


@pytest.mark.parametrize("sql, rule", BLOCKED)
def test_blocked(policy, sql, rule):
    decision = policy.session("app").query(sql)
    assert decision.action == Action.BLOCK, (sql, decision)
    assert rule in decision.matched or decision.rule_id == rule, (sql, decision.matched)
    assert decision.client_message().startswith(f"blocked by wireproxy rule {decision.rule_id}")


@pytest.mark.parametrize("sql", BENIGN)
def test_benign(policy, sql):
    decision = policy.session("app").query(sql)
    assert decision.action == Action.ALLOW, (sql, decision.rule_id, decision.facts)


def test_asyncpg_introspection_passes(policy):
    queries = _driver_queries()
    assert len(queries) >= 3
    for sql in queries:
        assert policy.session("app").query(sql).action == Action.ALLOW, sql


def test_blocked_through_extended_protocol_and_http_side(policy):
    judge = policy.session("app")
    assert judge.parse("DELETE FROM users WHERE $1").action == Action.BLOCK
    assert policy.judge_sql("TRUNCATE users").rule_id == "no-truncate"


def test_fastpath_function_calls(policy):
    judge = policy.session("app")
    assert judge.function("pg_catalog.lo_export").rule_id == "no-large-objects"
    assert judge.function("lo_import").action == Action.BLOCK
    assert judge.function("pg_catalog.pg_read_file").rule_id == "no-server-files"
    assert judge.function("pg_catalog.int4pl").action == Action.ALLOW
    unknown = judge.function(None)
    assert unknown.action == Action.BLOCK and unknown.rule_id == "unknown-function"


def test_every_default_rule_has_a_why_comment():
    text = DEFAULT.read_text()
    blocks = text.split("[[rule]]")[1:]
    assert len(blocks) >= 18
    for block in blocks:
        lines = block.strip().splitlines()
        assert lines[0].startswith("id = ")
        assert lines[1].startswith("# "), f"rule {lines[0]} has no comment saying why"
