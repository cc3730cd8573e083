"""Statements over the scratch schema, generated from a small grammar with hypothesis.

The grammar covers the classes of issue 11: reads (bounded and not, through subqueries, CTEs,
unions, aggregates and export functions), copies into new relations, UPDATE/DELETE/MERGE with
predicates that do or do not bound them (tautologies of every kind, self-subqueries, value
ranges), role and privilege changes, RLS, owners, rules, routine calls; then wrappers that
hide a statement (CTE, EXPLAIN ANALYZE, PREPARE/EXECUTE, DO with a constant or a computed
EXECUTE, a function body) and spellings (case, comments, quoting). Constants in predicates stay
between -20 and 20, inside the data (ids -40..40), so a predicate reaches every row only when
it says so.
"""

from __future__ import annotations

from hypothesis import strategies as st

from fuzz.differential.scratch import PLAIN, SENSITIVE

TABLES = SENSITIVE + PLAIN
small = st.integers(min_value=-20, max_value=20)
table = st.sampled_from(TABLES)
sensitive = st.sampled_from(SENSITIVE)


@st.composite
def predicate(draw, alias: str = "") -> str:
    q = f"{alias}." if alias and draw(st.booleans()) else ""
    col = draw(st.sampled_from(["id", "name"])) if draw(st.booleans()) else "id"
    ops = st.sampled_from(["=", "<>", "<", ">", "<=", ">="])
    bounded = [
        f"{q}id {draw(ops)} {draw(small)}", f"{q}id IN ({draw(small)}, {draw(small)})",
        f"{q}id BETWEEN {draw(small)} AND {draw(small)}", f"{q}name = 'n{draw(small)}'",
        f"{q}name LIKE 'n1%'", f"{q}id = {draw(small)} OR {q}id = {draw(small)}",
        f"{q}{col} IS NULL", f"NOT ({q}id > {draw(small)})",
    ]
    tautologies = [
        "true", "1 = 1", f"{q}id = {q}id", f"{q}id >= {q}id", "'t'", "NOT false", f"{q}id IS NOT NULL OR {q}id IS NULL",
        f"{q}id = {q}id OR {q}id > {draw(small)}", f"{q}name LIKE '%' OR {q}name IS NULL", "2 > 1",
        f"({q}id = {q}id) = true", f"{q}id > -9223372036854775809", f"coalesce({q}name, '') >= ''",
        f"(NULL AND {q}id = 1) IS NOT TRUE", f"{q}id <> {q}id OR true", f"NOT ({q}id <> {q}id)",
        "(SELECT true)", "EXISTS (SELECT 1)", f"{q}created_at > '-infinity' OR {q}created_at IS NULL",
        f"length(coalesce({q}name, '')) >= 0", f"{q}id IS NOT NULL", f"{q}id > -2147483649",
    ]
    choice = draw(st.sampled_from(["bounded", "bounded", "taut", "and", "or", "not"]))
    if choice == "bounded":
        return draw(st.sampled_from(bounded))
    if choice == "taut":
        return draw(st.sampled_from(tautologies))
    left, right = draw(st.sampled_from(bounded + tautologies)), draw(st.sampled_from(bounded + tautologies))
    if choice == "not":
        return f"NOT ({left})"
    return f"({left}) {'AND' if choice == 'and' else 'OR'} ({right})"


@st.composite
def select(draw) -> str:
    t = draw(table)
    where = f" WHERE {draw(predicate())}" if draw(st.booleans()) else ""
    # (no OFFSET: it is no bound, yet it leaves rows out, and the observer wants every row)
    limit = draw(st.sampled_from(["", "", " LIMIT 5", " LIMIT ALL", " LIMIT NULL", " FETCH FIRST 3 ROWS ONLY",
                                  f" LIMIT (SELECT count(*) FROM {t})"]))
    cols = draw(st.sampled_from(["*", "id, email" if t in SENSITIVE else "id, name", "count(*)",
                                 "json_agg(x)", "string_agg(x::text, ',')", "array_agg(x.name)" if t in PLAIN else "array_agg(x.secret)", "max(id)",
                                 "x.*, row_number() OVER ()", "to_jsonb(x)"]))
    form = draw(st.sampled_from(["plain", "plain", "sub", "cte", "union", "array", "xml"]))
    core = f"SELECT {cols} FROM {t} x{where}"
    if form == "sub":
        return f"SELECT * FROM ({core}) s{limit}"
    if form == "cte":
        return f"WITH c AS ({core}) SELECT * FROM c{limit}"
    if form == "union":
        return f"{core} UNION ALL SELECT {cols} FROM {t} x{limit}"
    if form == "array":
        return f"SELECT ARRAY(SELECT x::text FROM {t} x{where}{limit})"
    if form == "xml":
        return draw(st.sampled_from([f"SELECT table_to_xml('{t}', true, false, '')",
                                     f"SELECT query_to_xml('SELECT * FROM {t}{where.replace(chr(39), chr(39) * 2)}', true, false, '')"]))
    return core + limit


@st.composite
def write(draw) -> str:
    t = draw(st.sampled_from(PLAIN + SENSITIVE))
    where = f" WHERE {draw(predicate('x'))}" if draw(st.integers(0, 3)) else ""
    form = draw(st.sampled_from(["delete", "update", "delete_using", "merge", "self_in", "exists"]))
    if form == "delete":
        return f"DELETE FROM {t} x{where}"
    if form == "update":
        return f"UPDATE {t} x SET id = id{where}" if t in SENSITIVE else f"UPDATE {t} x SET total = 0{where}"
    if form == "delete_using":
        return f"DELETE FROM {t} USING {t} AS t2 WHERE {t}.id = t2.{draw(st.sampled_from(['id', 'id', 'team_id' if t in SENSITIVE else 'parent']))}"
    if form == "self_in":
        inner = draw(st.sampled_from(["", " WHERE id > 0", " LIMIT 3"]))
        return f"DELETE FROM {t} WHERE id IN (SELECT id FROM {t}{inner})"
    if form == "exists":
        return f"DELETE FROM {t} WHERE EXISTS (SELECT 1 FROM {t} t2 WHERE t2.id = {t}.id{draw(st.sampled_from(['', ' AND t2.id > 0']))})"
    on = draw(st.sampled_from(["true", f"{t}.id = s.id", "s.id = 1", f"{t}.id = s.id AND s.id > 0"]))
    source = draw(st.sampled_from([f"{t} AS s", "(SELECT 1 AS id) s", f"(SELECT id FROM {t} WHERE id > 0) s"]))
    return f"MERGE INTO {t} USING {source} ON {on} WHEN MATCHED THEN DELETE"


@st.composite
def copy(draw) -> str:
    t = draw(sensitive)
    where = draw(st.sampled_from(["", "", " WHERE id = 1", " WHERE id > 0", " LIMIT 3", " WHERE true"]))
    return draw(st.sampled_from([
        f"CREATE TABLE c1 AS SELECT * FROM {t}{where}", f"SELECT * INTO TEMP c2 FROM {t}{where}",
        f"CREATE MATERIALIZED VIEW c3 AS SELECT * FROM {t}{where}", f"CREATE VIEW c4 AS SELECT * FROM {t}{where}",
        f"INSERT INTO sink SELECT secret FROM {t}{where}", f"CREATE TEMP TABLE c5 AS TABLE {t}",
        f"CREATE TABLE c6 AS SELECT string_agg(email, ',') AS e FROM {t}{where}"]))


@st.composite
def privilege(draw) -> str:
    role = draw(st.sampled_from(["bob", "analyst", "CURRENT_USER", '"bob"']))
    granted = draw(st.sampled_from(["pg_read_all_data", "pg_write_all_data", "pg_read_server_files",
                                    "pg_execute_server_program", "postgres", "analyst", "pg_monitor"]))
    attr = draw(st.sampled_from(["SUPERUSER", "CREATEROLE", "BYPASSRLS", "REPLICATION", "NOSUPERUSER",
                                 "CREATEDB", "LOGIN", "PASSWORD 'x'", "NOCREATEROLE", "CONNECTION LIMIT 3"]))
    return draw(st.sampled_from([
        f"GRANT {granted} TO {role}", f"ALTER ROLE {role} {attr}", f"ALTER USER {role} WITH {attr}",
        f"CREATE ROLE newrole {attr}", f"CREATE ROLE newrole IN ROLE {granted}",
        f"ALTER GROUP {granted} ADD USER bob", "ALTER TABLE accounts DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY", "ALTER TABLE accounts ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY p9 ON accounts USING ({draw(st.sampled_from(['true', '1 = 1', 'owner = current_user', 'id > 0']))})",
        "CREATE POLICY p9 ON accounts AS RESTRICTIVE USING (true)",
        f"ALTER TABLE {draw(table)} OWNER TO bob", "ALTER FUNCTION order_total() OWNER TO bob",
        "GRANT SELECT ON orders TO analyst", "GRANT ALL ON users TO PUBLIC", "REVOKE SELECT ON accounts FROM bob",
        "UPDATE pg_authid SET rolsuper = true WHERE rolname = 'bob'", "SELECT rolpassword FROM pg_authid",
        "SELECT passwd FROM pg_shadow", "SELECT rolname FROM pg_roles", "SET ROLE bob", "RESET ROLE",
        "ALTER ROLE bob SET session_preload_libraries = 'auto_explain'", "SET work_mem = '8MB'",
        "CREATE RULE r1 AS ON INSERT TO log DO INSTEAD NOTHING",
        f"CREATE RULE r2 AS ON INSERT TO log DO ALSO DELETE FROM {draw(table)}",
        "CREATE RULE r3 AS ON INSERT TO log DO ALSO NOTIFY log_changed",
        "CREATE FUNCTION sd() RETURNS int SECURITY DEFINER LANGUAGE sql AS 'SELECT 1'",
        "SELECT pg_read_file('postgresql.conf')",
    ]))


routine_call = st.sampled_from([
    "SELECT purge_orders()", "SELECT purge_one(3)", "CALL wipe_events()", "SELECT order_total()",
    "SELECT calls_purge()", "SELECT reset_totals()", "SELECT * FROM dump_users()", "SELECT * FROM one_user(1)",
    "SELECT public.purge_orders()", "SELECT count(*) FROM orders WHERE order_total() > 0",
])

base_statement = st.one_of(select(), write(), copy(), privilege(), routine_call)


@st.composite
def wrapped(draw) -> str:
    stmt = draw(base_statement)
    how = draw(st.sampled_from(["none", "none", "none", "cte", "explain", "prepare", "do_const", "do_dynamic",
                                "function", "two"]))
    quoted = stmt.replace("'", "''")
    if how == "cte" and not stmt.upper().startswith(("CREATE", "ALTER", "GRANT", "REVOKE", "SET", "RESET", "CALL")):
        return f"WITH w AS ({stmt} RETURNING 1) SELECT 1" if stmt.startswith(("DELETE", "UPDATE")) else \
            f"WITH w AS ({stmt}) SELECT * FROM w"
    if how == "explain" and not stmt.upper().startswith(("ALTER", "GRANT", "REVOKE", "SET", "RESET", "CALL")):
        return f"EXPLAIN (ANALYZE, FORMAT TEXT) {stmt}"
    if how == "prepare" and stmt.upper().startswith(("SELECT", "DELETE", "UPDATE", "INSERT", "MERGE")):
        return f"PREPARE wp1 AS {stmt}; EXECUTE wp1"
    if how == "do_const":
        return f"DO $wp$BEGIN EXECUTE '{quoted}'; END$wp$"
    if how == "do_dynamic":
        return f"DO $wp$BEGIN EXECUTE 'SELECT 1' || '; ' || '{quoted}'; END$wp$"
    if how == "function" and not stmt.upper().startswith(("CREATE", "SET", "RESET")):
        return (f"CREATE FUNCTION wp_f() RETURNS void LANGUAGE plpgsql AS $wp$BEGIN EXECUTE '{quoted}'; END$wp$; "
                f"SELECT wp_f()")
    if how == "two":
        return f"SELECT 1; {stmt}"
    return stmt


statements = wrapped()
