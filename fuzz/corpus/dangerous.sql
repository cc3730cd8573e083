-- Statements with an effect the default pack must block or hold (one per line).
DELETE FROM orders
DELETE FROM orders WHERE true
DELETE FROM orders WHERE 1 = 1 OR id = 3
UPDATE orders SET total = 0
UPDATE orders SET total = 0 WHERE id = id
DELETE FROM orders WHERE id IN (SELECT id FROM orders)
DELETE FROM orders o WHERE EXISTS (SELECT 1 FROM orders o2 WHERE o2.id = o.id)
DELETE FROM orders USING orders AS o2 WHERE orders.id = o2.id
DELETE FROM orders WHERE name >= '' OR name IS NULL
DELETE FROM orders WHERE id > -9223372036854775809
DELETE FROM orders WHERE (NULL AND id = 1) IS NOT TRUE
MERGE INTO orders USING orders AS s ON orders.id = s.id WHEN MATCHED THEN DELETE
MERGE INTO orders USING (SELECT 1 AS k) s ON true WHEN MATCHED THEN UPDATE SET total = 0
TRUNCATE events
TRUNCATE TABLE ONLY events, log
DROP TABLE t
DROP VIEW IF EXISTS nothing_here, t CASCADE
ALTER TABLE t DROP COLUMN name
WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d
SELECT * FROM users
SELECT u.* FROM users u LEFT JOIN orders o ON o.id = u.id
SELECT json_agg(u) FROM users u
SELECT string_agg(secret, ',') FROM user_tokens
SELECT jsonb_object_agg(id, email) FROM card_secrets
SELECT xmlagg(xmlelement(name s, secret)) FROM api_keys
SELECT table_to_xml('users', true, false, '')
SELECT query_to_xml('SELECT * FROM user_tokens', true, false, '')
SELECT ARRAY(SELECT email FROM users)
SELECT * FROM users WHERE 1 = 1
SELECT * FROM users WHERE id IN (SELECT id FROM users)
SELECT * FROM users LIMIT ALL
SELECT * FROM users LIMIT (SELECT count(*) FROM users)
WITH a AS (SELECT * FROM card_secrets) SELECT * FROM a
SELECT * FROM (SELECT * FROM api_keys) k
SELECT * FROM users UNION SELECT * FROM users
DO $$BEGIN RAISE NOTICE '%', (SELECT string_agg(secret, ',') FROM users); END$$
SELECT * FROM dump_users()
CREATE TABLE loot AS SELECT * FROM users
SELECT * INTO TEMP loot FROM user_tokens
CREATE MATERIALIZED VIEW loot AS SELECT * FROM card_secrets
CREATE VIEW loot AS SELECT secret FROM api_keys
INSERT INTO sink SELECT secret FROM users
EXPLAIN ANALYZE CREATE TABLE loot AS SELECT * FROM users
PREPARE q AS SELECT * FROM users; CREATE TABLE loot AS EXECUTE q
CREATE TEMP TABLE loot AS TABLE user_tokens
SELECT rolpassword FROM pg_authid
SELECT passwd FROM pg_shadow
GRANT pg_read_all_data TO bob
GRANT pg_write_all_data TO bob
GRANT pg_read_server_files TO bob
GRANT pg_execute_server_program TO bob
GRANT postgres TO bob
CREATE ROLE newrole IN ROLE pg_read_all_data
ALTER GROUP pg_read_all_data ADD USER bob
ALTER ROLE bob SUPERUSER
ALTER USER bob WITH CREATEROLE
ALTER ROLE bob BYPASSRLS
ALTER ROLE bob REPLICATION
CREATE ROLE newrole SUPERUSER
ALTER TABLE accounts DISABLE ROW LEVEL SECURITY
ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY
CREATE POLICY open_all ON accounts USING (true)
CREATE POLICY open_all ON accounts FOR SELECT USING (1 = 1)
ALTER POLICY own_rows ON accounts USING (true)
ALTER TABLE orders OWNER TO bob
ALTER FUNCTION order_total() OWNER TO bob
UPDATE pg_authid SET rolsuper = true WHERE rolname = 'bob'
ALTER ROLE bob SET session_preload_libraries = 'auto_explain'
CREATE RULE trap AS ON INSERT TO log DO INSTEAD NOTHING
CREATE RULE trap AS ON INSERT TO log DO ALSO DELETE FROM orders
SELECT purge_orders()
CALL wipe_events()
SELECT calls_purge()
SELECT reset_totals()
SELECT public.purge_orders()
SET ROLE bob
SET SESSION AUTHORIZATION bob
SELECT set_config('role', 'bob', true)
SELECT pg_read_file('postgresql.conf')
CREATE FUNCTION sd() RETURNS int SECURITY DEFINER LANGUAGE sql AS 'SELECT 1'
-- found by the differential run (regressions)
WITH w AS (WITH c AS (SELECT json_agg(x) FROM card_secrets x) SELECT * FROM c FETCH FIRST 3 ROWS ONLY) SELECT * FROM w
SELECT json_agg(u) FROM users u LIMIT 1
MERGE INTO card_secrets USING card_secrets AS s ON s.id = 1 WHEN MATCHED THEN DELETE
DELETE FROM orders WHERE id IS NOT NULL
UPDATE events SET total = 0 WHERE expired IN (true, false)
DELETE FROM log WHERE id > -2147483649
WITH c AS (SELECT * FROM user_tokens x WHERE coalesce(name, '') >= '') SELECT * FROM c LIMIT NULL
WITH w AS (SELECT array_agg(x.secret) FROM api_keys x WHERE id > -2147483649) SELECT * FROM w
DELETE FROM card_secrets x WHERE NOT (id BETWEEN 10 AND 5)
UPDATE orders x SET total = 0 WHERE NOT (x.id IS NULL)
SELECT json_agg(x) FROM user_tokens x WHERE NOT (id IS NULL) FETCH FIRST 3 ROWS ONLY
EXPLAIN ANALYZE SELECT purge_orders()
DO $wp$BEGIN EXECUTE 'DO $$BEGIN RAISE NOTICE ''%'', (SELECT string_agg(secret, '','') FROM users); END$$'; END$wp$
