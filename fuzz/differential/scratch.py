"""The scratch database the differential test runs statements in.

Tables are small and their data chosen so that effects can be told apart from accidents: ids
run from -40 to 40 (a predicate with a constant between -20 and 20 never reaches every row),
one row (id 33) has a NULL name and one an empty name, and every row of a sensitive table holds
a unique marker (`mk-users-17.`), so a result, a notice or a new relation that holds all of a
table's markers has handed the table over in full. No value is '-infinity': the policy takes
`x > '-infinity'` to bound nothing, which holds of every table that stores real dates. Roles: `bob` (plain, SELECT on accounts), `app_owner`
(owns accounts, which forces row-level security: each sees only its own rows).
"""

from __future__ import annotations

SENSITIVE = ("users", "user_tokens", "card_secrets", "api_keys")
ROW_SEPARATOR = " \u241f "   # between rows in the observer's table contents
PLAIN = ("orders", "events", "t", "log")
ROWS = range(-40, 41)
NULL_ROW = 33   # the one row whose name is NULL: outside the constants predicates use (-20..20)

_SENSITIVE_DDL = """
CREATE TABLE {name} (id int PRIMARY KEY, name text, email text, secret text, team_id int,
                     created_at timestamptz, amount numeric);
INSERT INTO {name}
SELECT i, CASE WHEN i = {null_row} THEN NULL WHEN i = 34 THEN '' ELSE 'n' || i END,
       'mk-{name}-' || i || '.@example.com', 'mk-{name}-' || i || '.', i % 5,
       timestamptz '2024-01-01' + i * interval '1 day', i * 10.5
FROM generate_series({lo}, {hi}) i;
"""

_PLAIN_DDL = """
CREATE TABLE {name} (id int PRIMARY KEY, name text, parent int, total int, expired bool NOT NULL,
                     created_at timestamptz);
INSERT INTO {name}
SELECT i, CASE WHEN i = {null_row} THEN NULL ELSE 'n' || i END, NULLIF(i % 7, 0), i * 3, i % 4 = 0,
       timestamptz '2024-01-01' + i * interval '1 hour'
FROM generate_series({lo}, {hi}) i;
"""

ROUTINES = """
CREATE FUNCTION purge_orders() RETURNS void LANGUAGE sql AS $$DELETE FROM orders$$;
CREATE FUNCTION purge_one(p int) RETURNS void LANGUAGE sql AS $$DELETE FROM orders WHERE id = p$$;
CREATE PROCEDURE wipe_events() LANGUAGE plpgsql AS $$BEGIN TRUNCATE events; END$$;
CREATE FUNCTION order_total() RETURNS bigint LANGUAGE sql STABLE AS $$SELECT sum(total) FROM orders$$;
CREATE FUNCTION calls_purge() RETURNS void LANGUAGE plpgsql AS $$BEGIN PERFORM purge_orders(); END$$;
CREATE FUNCTION reset_totals() RETURNS void LANGUAGE plpgsql AS $$BEGIN UPDATE orders SET total = 0 WHERE true; END$$;
CREATE FUNCTION dump_users() RETURNS SETOF users LANGUAGE sql AS $$SELECT * FROM users$$;
CREATE FUNCTION one_user(p int) RETURNS SETOF users LANGUAGE sql AS $$SELECT * FROM users WHERE id = p$$;
"""

ROLES = """
DO $$BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bob') THEN
    CREATE ROLE bob LOGIN PASSWORD 'bob-secret-password';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_owner') THEN CREATE ROLE app_owner; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'analyst') THEN CREATE ROLE analyst; END IF;
END$$;
"""

ACCOUNTS = """
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance int);
INSERT INTO accounts SELECT i, (ARRAY['bob', 'app_owner', 'carol'])[1 + abs(i) % 3], i * 100
FROM generate_series(-40, 40) i;
ALTER TABLE accounts OWNER TO app_owner;
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON accounts USING (owner = current_user);
GRANT SELECT ON accounts TO bob;
GRANT USAGE ON SCHEMA public TO bob, app_owner;
"""

OBSERVE = """
CREATE SCHEMA wp_observe;
-- Every user table's rows as text, one value per table (the observer's own reads).
CREATE FUNCTION wp_observe.contents() RETURNS json LANGUAGE plpgsql AS $$
DECLARE r record; out jsonb := '{}'; body text;
BEGIN
  FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'v', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'wp_observe')
             AND n.nspname NOT LIKE 'pg_toast%'
  LOOP
    BEGIN   -- xmin/row: a row updated in place gets a new xmin, even when its text stays the same
      EXECUTE format('SELECT count(*)::text || %L || coalesce(string_agg(x.xmin::text || %L || x::text, %L), %L) FROM %s x',
                     ':', '/', E' \u241f ', '', r.rel) INTO body;
    EXCEPTION WHEN others THEN
      BEGIN   -- a view: no xmin
        EXECUTE format('SELECT count(*)::text || %L || coalesce(string_agg(%L || x::text, %L), %L) FROM %s x',
                       ':', '-/', E' \u241f ', '', r.rel) INTO body;
      EXCEPTION WHEN others THEN body := 'unreadable';
      END;
    END;
    out := out || jsonb_build_object(r.rel::text, body);
  END LOOP;
  RETURN out;
END$$;
"""


def setup_sql() -> str:
    parts = [ROLES]
    for name in SENSITIVE:
        parts.append(_SENSITIVE_DDL.format(name=name, lo=ROWS.start, hi=ROWS.stop - 1, null_row=NULL_ROW))
    for name in PLAIN:
        parts.append(_PLAIN_DDL.format(name=name, lo=ROWS.start, hi=ROWS.stop - 1, null_row=NULL_ROW))
    parts += ["CREATE TABLE sink (data text);", ACCOUNTS, ROUTINES, OBSERVE]
    return "\n".join(parts)


def markers(table: str) -> list[str]:
    """The markers of a sensitive table's rows (the trailing dot keeps mk-users-1. apart from
    mk-users-17.), but the NULL-name row's: `name >= ''` reads every row but that one, and is
    as unbounded as `true`."""
    return [f"mk-{table}-{i}." for i in ROWS if i != NULL_ROW]
