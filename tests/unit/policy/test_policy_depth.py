"""Issue 11: statements judged by what they do, per class, each with benign look-alikes that
must pass (the default pack; `users`, `user_tokens`, `card_secrets`, `api_keys`... are sensitive)."""

from pathlib import Path

import pytest

from wireproxy.config.rulefile import load_rules, parse_rules
from wireproxy.policy import Action, Policy

DEFAULT = Path(__file__).resolve().parents[3] / "rules" / "default.toml"


@pytest.fixture(scope="module")
def policy():
    return Policy(load_rules([DEFAULT]))


def judged(policy, sql, user="app"):
    return policy.session(user).query(sql)


def held(policy, sql) -> str:
    d = judged(policy, sql)
    assert d.action in (Action.BLOCK, Action.APPROVE), (sql, d.action, [s.to_dict() for s in d.facts or ()])
    return d.rule_id


def passes(policy, sql) -> None:
    d = judged(policy, sql)
    assert d.action == Action.ALLOW, (sql, d.rule_id, [s.to_dict() for s in d.facts or ()])


# --- copying data out of reach of the rules --------------------------------------------------

COPIES = [
    "CREATE TABLE x AS SELECT * FROM users",
    "SELECT * INTO x FROM users",
    "SELECT * INTO TEMP x FROM user_tokens",
    "CREATE MATERIALIZED VIEW mv AS SELECT * FROM users",
    "CREATE VIEW v AS SELECT id, email FROM users",
    "CREATE OR REPLACE VIEW v AS SELECT * FROM card_secrets WHERE true",
    "INSERT INTO exfil SELECT * FROM user_tokens",
    "CREATE TEMP TABLE x AS SELECT * FROM card_secrets",
    "EXPLAIN ANALYZE CREATE TABLE x AS SELECT * FROM users",
    "WITH s AS (SELECT * FROM users) INSERT INTO x SELECT * FROM s",
    "CREATE TABLE x AS SELECT u.* FROM (SELECT * FROM public.users) u",
    "CREATE UNLOGGED TABLE x AS TABLE users",
]
COPY_LOOKALIKES = [
    "CREATE TABLE x AS SELECT * FROM users WHERE id = 42",
    "CREATE TEMP TABLE recent AS SELECT * FROM users WHERE created_at > now() - interval '1 day'",
    "CREATE TEMP TABLE x AS SELECT * FROM users LIMIT 10",
    "CREATE TABLE x AS SELECT * FROM events",
    "INSERT INTO audit SELECT * FROM users WHERE id = $1",
    "CREATE VIEW v AS SELECT * FROM orders",
    "CREATE VIEW team AS SELECT id, name FROM users WHERE team_id = 7",
    "INSERT INTO t VALUES (1, 'a')",
]


@pytest.mark.parametrize("sql", COPIES)
def test_copies_are_held(policy, sql):
    assert held(policy, sql) in ("approve-sensitive-copy", "approve-whole-table-read")


@pytest.mark.parametrize("sql", COPY_LOOKALIKES)
def test_copy_lookalikes_pass(policy, sql):
    passes(policy, sql)


def test_copy_through_a_prepared_statement(policy):
    judge = policy.session("app")
    assert judge.query("PREPARE p AS SELECT * FROM users WHERE id = $1").action == Action.ALLOW
    assert judge.query("CREATE TABLE x AS EXECUTE p(1)").action == Action.ALLOW
    judge.query("PREPARE q AS SELECT * FROM users")     # held itself (a whole read)...
    d = judge.query("PREPARE q2 AS SELECT * FROM user_tokens; CREATE TABLE y AS EXECUTE q2")
    assert d.action == Action.APPROVE and d.rule_id in ("approve-sensitive-copy", "approve-whole-table-read")
    assert any(s.via == "CREATE TABLE AS EXECUTE" and s.copies == {"user_tokens"} for s in d.facts)


# --- whole-table reads -----------------------------------------------------------------------

WHOLE_READS = [
    "SELECT * FROM users", "select * from USERS", 'SELECT * FROM "users"', "SELECT * FROM public.users",
    "SELECT * FROM users WHERE 1=1", "SELECT * FROM users WHERE true OR id = 1",
    "SELECT * FROM users WHERE email LIKE '%'", "SELECT * FROM users LIMIT ALL",
    "SELECT * FROM users LIMIT NULL", "SELECT * FROM users LIMIT (SELECT count(*) FROM users)",
    "SELECT * FROM (SELECT * FROM users) s", "WITH u AS (SELECT * FROM users) SELECT * FROM u",
    "WITH RECURSIVE u AS (SELECT * FROM users) SELECT * FROM u",
    "SELECT json_agg(u) FROM users u", "SELECT string_agg(email, ',') FROM users",
    "SELECT array_agg(u.*) FROM users u", "SELECT xmlagg(xmlelement(name e, email)) FROM users",
    "SELECT jsonb_object_agg(id, email) FROM users", "SELECT table_to_xml('users', true, false, '')",
    "SELECT table_to_xml('public.Users', true, false, '')",
    "SELECT query_to_xml('SELECT * FROM users', true, false, '')", "SELECT ARRAY(SELECT email FROM users)",
    "DECLARE c CURSOR FOR SELECT * FROM users", "BEGIN; DECLARE c NO SCROLL CURSOR WITH HOLD FOR TABLE users; FETCH ALL c",
    "SELECT * FROM users WHERE id IN (SELECT id FROM users)",
    "SELECT u.* FROM users u LEFT JOIN orders o ON o.user_id = u.id",
    "SELECT * FROM users UNION ALL SELECT * FROM users", "SELECT row_to_json(u) FROM users u",
    "SELECT id, email, row_number() OVER () FROM users",
    "DO $$BEGIN RAISE NOTICE '%', (SELECT json_agg(u) FROM users u); END$$",
    "SELECT jsonb_agg(to_jsonb(a)) FROM api_keys a", "SELECT * FROM user_tokens",
    "COPY (SELECT * FROM users) TO STDOUT", "SELECT json_agg(u) FROM users u LIMIT 1",
    "WITH c AS (SELECT json_agg(x) FROM card_secrets x) SELECT * FROM c FETCH FIRST 3 ROWS ONLY",
    "SELECT * FROM users /* WHERE id = 1 */", "SELECT * FROM users WHERE id = id",
    "SELECT * FROM users WHERE name >= ''",
    # found by the differential runs
    "DO $wp$BEGIN EXECUTE 'DO $$BEGIN RAISE NOTICE ''%'', (SELECT string_agg(secret, '','') FROM users); END$$'; END$wp$",
    "WITH c AS (SELECT * FROM user_tokens x WHERE coalesce(name, '') >= '') SELECT * FROM c LIMIT NULL",
    "WITH w AS (SELECT array_agg(x.secret) FROM api_keys x WHERE id > -2147483649) SELECT * FROM w",
]
READ_LOOKALIKES = [
    "SELECT * FROM users WHERE id = $1", "SELECT * FROM users LIMIT 50",
    "SELECT * FROM users ORDER BY id LIMIT 20 OFFSET 40", "SELECT * FROM users FETCH FIRST 10 ROWS ONLY",
    "SELECT count(*) FROM users", "SELECT json_agg(u) FROM users u WHERE u.team_id = 7",
    "SELECT status, count(*) FROM users GROUP BY status", "SELECT * FROM orders",
    "SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.id = $1",
    "SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)",
    "SELECT * FROM orders WHERE user_id IN (SELECT id FROM users)",
    "SELECT date_trunc('day', created_at), count(*) FROM users GROUP BY 1 ORDER BY 1",
    "SELECT * FROM users WHERE id = ANY($1)", "SELECT max(created_at) FROM users",
    "SELECT * FROM users u WHERE u.email = 'a@b.c' UNION SELECT * FROM users WHERE id = 2 LIMIT 5",
    "EXPLAIN ANALYZE SELECT * FROM users",                    # the plan comes back, not the rows
    "DO $$BEGIN EXECUTE 'SELECT * FROM users'; END$$",        # the rows go nowhere
    "DO $$BEGIN PERFORM count(*) FROM users; END$$",
]


@pytest.mark.parametrize("sql", WHOLE_READS)
def test_whole_table_reads_are_held(policy, sql):
    held(policy, sql)


@pytest.mark.parametrize("sql", READ_LOOKALIKES)
def test_bounded_reads_pass(policy, sql):
    passes(policy, sql)


def test_whole_read_action_is_configurable():
    rules = 'sensitive_tables = ["hr.*"]\n[[rule]]\nid = "hr"\naction = "block"\nreads_all = true\n'
    p = Policy(parse_rules(rules))
    assert judged(p, "SELECT * FROM hr.salaries").action == Action.BLOCK
    assert judged(p, "SELECT * FROM hr.salaries WHERE id = 1").action == Action.ALLOW
    assert judged(p, "SELECT * FROM users").action == Action.ALLOW


# --- credential catalogs ---------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "SELECT * FROM pg_authid", "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = 'postgres'",
    "SELECT passwd FROM pg_shadow", "SELECT * FROM pg_user_mapping", "SELECT * FROM pg_statistic",
    "SELECT (SELECT rolpassword FROM pg_authid LIMIT 1)", "GRANT SELECT ON pg_authid TO bob",
])
def test_credential_catalogs_are_blocked(policy, sql):
    d = judged(policy, sql)
    assert d.action == Action.BLOCK and d.rule_id == "no-credential-catalogs", sql


@pytest.mark.parametrize("sql", [
    "SELECT rolname FROM pg_roles", "SELECT * FROM pg_user_mappings", "SELECT usename FROM pg_user",
    "SELECT r.rolname, r.rolsuper, ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m JOIN "
    "pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) AS memberof FROM "
    "pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1",
])
def test_role_views_pass(policy, sql):
    passes(policy, sql)


# --- privilege escalation --------------------------------------------------------------------

ESCALATIONS = [
    ("GRANT pg_read_server_files TO bob", "no-privileged-grants"),
    ("GRANT pg_execute_server_program TO bob", "no-privileged-grants"),
    ("GRANT pg_write_server_files TO bob", None),
    ("GRANT pg_read_all_data TO bob", "no-privileged-grants"),
    ("GRANT pg_write_all_data TO bob WITH ADMIN OPTION", "no-privileged-grants"),
    ("GRANT postgres TO mallory", "no-privileged-grants"),
    ('GRANT "pg_read_all_data", analyst TO bob', "no-privileged-grants"),
    ("CREATE ROLE x IN ROLE pg_read_all_data", "no-privileged-grants"),
    ("ALTER GROUP pg_write_all_data ADD USER bob", "no-privileged-grants"),
    ("ALTER ROLE bob CREATEROLE", "no-privileged-roles"),
    ("ALTER ROLE bob WITH SUPERUSER", "no-privileged-roles"),
    ("alter user bob bypassrls", "no-privileged-roles"),
    ("CREATE USER x REPLICATION", "no-privileged-roles"),
    ("CREATE ROLE x WITH LOGIN CREATEROLE", "no-privileged-roles"),
    ("ALTER ROLE CURRENT_USER SUPERUSER", "no-privileged-roles"),
    ("DO $$BEGIN EXECUTE 'ALTER ROLE bob SUPERUSER'; END$$", "no-privileged-roles"),
    ("ALTER TABLE accounts DISABLE ROW LEVEL SECURITY", "no-rls-off"),
    ("ALTER TABLE IF EXISTS ONLY accounts NO FORCE ROW LEVEL SECURITY", "no-rls-off"),
    ("UPDATE pg_authid SET rolsuper = true WHERE rolname = 'bob'", None),
    ("INSERT INTO pg_catalog.pg_auth_members VALUES (1, 2, 3, false)", "no-catalog-writes"),
    ("DELETE FROM pg_class WHERE relname = 'x'", "no-catalog-writes"),
    ("UPDATE pg_catalog.pg_proc SET prosecdef = true WHERE proname = 'f'", "no-catalog-writes"),
    ("WITH x AS (UPDATE pg_database SET datallowconn = true WHERE datname = 'x' RETURNING 1) SELECT 1",
     "no-catalog-writes"),
    ("LOAD 'plpgsql'", "no-load"),
    ("ALTER ROLE bob SET session_preload_libraries = 'evil'", "no-load"),
    ("SET local_preload_libraries = 'evil'", "no-load"),
    ("CREATE POLICY p ON accounts USING (true)", "approve-open-policy"),
    ("CREATE POLICY p ON accounts FOR SELECT TO PUBLIC USING (1 = 1)", "approve-open-policy"),
    ("ALTER POLICY p ON accounts WITH CHECK (true)", "approve-open-policy"),
    ("ALTER TABLE accounts OWNER TO bob", "approve-owner-change"),
    ("ALTER FUNCTION f() OWNER TO bob", "approve-owner-change"),
    ("REASSIGN OWNED BY alice TO bob", "approve-owner-change"),
    ("ALTER SCHEMA s OWNER TO bob", "approve-owner-change"),
]
ESCALATION_LOOKALIKES = [
    "GRANT SELECT ON orders TO analyst", "GRANT analyst TO bob", "ALTER ROLE bob PASSWORD 'x'",
    "ALTER ROLE bob NOSUPERUSER", "ALTER ROLE bob WITH NOCREATEROLE NOBYPASSRLS", "CREATE ROLE app LOGIN",
    "ALTER TABLE accounts ENABLE ROW LEVEL SECURITY", "ALTER TABLE accounts FORCE ROW LEVEL SECURITY",
    "CREATE POLICY p ON accounts USING (owner = current_user)",
    "CREATE POLICY p ON accounts AS RESTRICTIVE USING (true)",
    "SELECT * FROM pg_class WHERE relname = 'x'", "GRANT USAGE ON SCHEMA app TO analyst",
    "REVOKE pg_read_all_data FROM bob", "SET work_mem = '64MB'",
]


@pytest.mark.parametrize("sql,rule", ESCALATIONS)
def test_escalations_are_stopped(policy, sql, rule):
    got = held(policy, sql)
    assert rule is None or got == rule, (sql, got)


@pytest.mark.parametrize("sql", ESCALATION_LOOKALIKES)
def test_escalation_lookalikes_pass(policy, sql):
    passes(policy, sql)


# --- writes hidden behind a name: rules and MERGE (routines: test_policy_routines.py) -------

@pytest.mark.parametrize("sql,rule", [
    ("CREATE RULE r AS ON INSERT TO log DO ALSO DELETE FROM accounts", "no-unbounded-write"),
    ("CREATE RULE r AS ON SELECT TO v DO INSTEAD SELECT 1", None),
    ("CREATE RULE r AS ON UPDATE TO t DO INSTEAD NOTHING", "approve-rewrite-rule"),
    ("CREATE RULE r AS ON INSERT TO log DO ALSO INSERT INTO x VALUES (1)", "approve-rewrite-rule"),
    ("ALTER TABLE t ENABLE RULE r", "approve-rewrite-rule"),
    ("ALTER TABLE t ENABLE ALWAYS RULE r", "approve-rewrite-rule"),
    ("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", "no-unbounded-write"),
    ("MERGE INTO t USING t AS s ON t.id = s.id WHEN MATCHED THEN DELETE", "no-unbounded-write"),
    ("MERGE INTO t USING (SELECT 1 AS x) s ON 1 = 1 WHEN MATCHED THEN UPDATE SET a = 0", "no-unbounded-write"),
    ("MERGE INTO t USING s ON s.k = 5 WHEN MATCHED THEN DELETE", "no-unbounded-write"),
    # found by the differential run: a self-merge with no join column matches every row
    ("MERGE INTO t USING t AS s ON s.id = 1 WHEN MATCHED THEN DELETE", "no-unbounded-write"),
])
def test_hidden_writes(policy, sql, rule):
    d = judged(policy, sql)
    if rule is None:
        assert d.action != Action.BLOCK or d.rule_id != "approve-rewrite-rule"
    else:
        assert d.rule_id == rule, (sql, d.rule_id)


@pytest.mark.parametrize("sql", [
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a",
    "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)",
    "CREATE RULE r AS ON INSERT TO log DO ALSO NOTIFY log_changed",
])
def test_hidden_write_lookalikes_pass(policy, sql):
    passes(policy, sql)


# --- predicates that hold for every row ------------------------------------------------------

TAUTOLOGIES = [
    ("DELETE FROM t WHERE id IN (SELECT id FROM t)", "self_subquery"),
    ("DELETE FROM t WHERE id = ANY (SELECT t.id FROM t)", "self_subquery"),
    ("DELETE FROM t WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id)", "self_subquery"),
    ("DELETE FROM t WHERE EXISTS (SELECT FROM t)", ""),
    ("DELETE FROM t USING t AS t2 WHERE t.id = t2.id", "self_subquery"),
    ("UPDATE t SET a = 0 FROM t AS t2 WHERE t.id = t2.id", "self_subquery"),
    ("DELETE FROM t WHERE name >= ''", "value_range"),
    ("DELETE FROM t WHERE id > -9223372036854775809", "value_range"),
    ("DELETE FROM t WHERE id <= 9223372036854775807", "value_range"),
    ("DELETE FROM t WHERE 9223372036854775808 > id", "value_range"),
    ("DELETE FROM t WHERE created_at > '-infinity'", "value_range"),
    ("DELETE FROM t WHERE length(name) >= 0", "value_range"),
    ("UPDATE t SET a = 1 WHERE abs(b) >= 0", "value_range"),
    ("DELETE FROM t WHERE coalesce(name, '') >= ''", "value_range"),
    ("DELETE FROM t WHERE NOT (id BETWEEN 10 AND 5)", "value_range"),   # found by the differential run
    ("DELETE FROM t WHERE id NOT BETWEEN 2 AND 1", "value_range"),
    ("DELETE FROM t WHERE (NULL AND id = 1) IS NOT TRUE", ""),
]
PREDICATE_LOOKALIKES = [
    "DELETE FROM t WHERE id IN (SELECT id FROM t WHERE expired)",
    "DELETE FROM t WHERE id IN (SELECT t_id FROM other)",
    "DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT 10)",
    "DELETE FROM t WHERE id > 100", "DELETE FROM t WHERE name >= 'm'", "DELETE FROM t WHERE id > -5",
    "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.parent = t.id)",
    "DELETE FROM t WHERE NOT (NULL AND id = 1)", "DELETE FROM t WHERE length(name) > 10",
    "DELETE FROM t USING u WHERE t.id = u.id", "UPDATE t SET a = 0 FROM t AS t2 WHERE t.id = t2.parent",
    # found by the differential run: a condition on the other scan of the same table bounds it
    "MERGE INTO t USING t AS s ON t.id = s.id AND s.id > 0 WHEN MATCHED THEN DELETE",
    "DELETE FROM t USING t AS t2 WHERE t.id = t2.id AND t2.id > 0",
    "UPDATE t SET a = 0 WHERE NOT EXISTS (SELECT 1)",
    "DELETE FROM t WHERE id BETWEEN 1 AND 5", "DELETE FROM t WHERE NOT (id BETWEEN 1 AND 5)",
    "UPDATE t SET a = 0 WHERE NOT ((SELECT true))",
]


@pytest.mark.parametrize("sql,check", TAUTOLOGIES)
def test_tautologies_are_blocked(policy, sql, check):
    d = judged(policy, sql)
    assert d.rule_id == "no-unbounded-write", (sql, d.rule_id)
    (st,) = [s for s in d.facts if s.kind in ("update", "delete")]
    assert st.where_checks == (frozenset({check}) if check else frozenset())


@pytest.mark.parametrize("sql", PREDICATE_LOOKALIKES)
def test_predicate_lookalikes_pass(policy, sql):
    passes(policy, sql)


def test_a_rule_can_leave_the_extended_checks_out():
    rules = ('[[rule]]\nid = "lit"\naction = "block"\nstatements = ["delete"]\nwithout_where = true\n'
             'where_checks = []\n[[rule]]\nid = "self"\naction = "audit"\nstatements = ["delete"]\n'
             'without_where = true\nwhere_checks = ["self_subquery"]\n')
    p = Policy(parse_rules(rules))
    assert judged(p, "DELETE FROM t WHERE true").rule_id == "lit"
    assert judged(p, "DELETE FROM t WHERE id IN (SELECT id FROM t)").rule_id == "self"
    assert judged(p, "DELETE FROM t WHERE name >= ''").action == Action.ALLOW


# --- what ORMs, drivers, psql, migrations and BI tools send still passes ---------------------

@pytest.mark.parametrize("sql", [
    'CREATE TABLE "app_author" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "name" varchar(100) NOT NULL)',
    'ALTER TABLE "app_book" ADD CONSTRAINT "app_book_author_id_fk" FOREIGN KEY ("author_id") REFERENCES "app_author" ("id") DEFERRABLE INITIALLY DEFERRED',
    'CREATE INDEX "app_book_author_id_idx" ON "app_book" ("author_id")',
    'SELECT "django_migrations"."id", "django_migrations"."app", "django_migrations"."name" FROM "django_migrations"',
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
    "UPDATE alembic_version SET version_num='ae1027a6acf' WHERE alembic_version.version_num = '1975ea83b712'",
    'SELECT "schema_migrations"."version" FROM "schema_migrations" ORDER BY "schema_migrations"."version" ASC',
    'INSERT INTO "ar_internal_metadata" ("key", "value", "created_at", "updated_at") VALUES ($1, $2, $3, $4) ON CONFLICT ("key") DO NOTHING RETURNING "key"',
    'SELECT "installed_rank", "version", "checksum" FROM "public"."flyway_schema_history" ORDER BY "installed_rank"',
    'SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2',
    "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3",
    "SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid WHERE typname = 'hstore'",
    "SELECT sum(amount), date_trunc('month', created_at) FROM card_secrets GROUP BY 2",
    "SELECT customer_id, count(*) AS n FROM card_secrets GROUP BY customer_id HAVING count(*) > 3",
    "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.updated_at = now(); RETURN NEW; END$$",
])
def test_tools_traffic_passes(policy, sql):
    passes(policy, sql)


@pytest.mark.parametrize("first,second", [
    ("DELETE FROM t WHERE id > 5", "DELETE FROM t WHERE id > -9223372036854775809"),
    ("DELETE FROM t WHERE name >= 'a'", "DELETE FROM t WHERE name >= ''"),
    ("DELETE FROM t WHERE d > 'today'", "DELETE FROM t WHERE d > '-infinity'"),
    ("DELETE FROM t WHERE id NOT BETWEEN 1 AND 5", "DELETE FROM t WHERE id NOT BETWEEN 5 AND 1"),
    ("UPDATE t SET a = 1 WHERE k IN ('r', 'p')", "UPDATE t SET a = 1 WHERE k IN (true, false)"),
    ("SELECT * FROM users WHERE id > 5", "SELECT * FROM users WHERE id > -9223372036854775809"),
])
def test_the_constants_cache_never_hides_a_value_check(first, second):
    policy = Policy(load_rules([DEFAULT]))    # one cache: the second text normalizes like the first
    judge = policy.session("app")
    assert judge.query(first).action == Action.ALLOW
    d = judge.query(second)
    assert d.action in (Action.BLOCK, Action.APPROVE) or d.columns_needed == ("t",)   # seen, or asked
    assert judge.query(first).action == Action.ALLOW
