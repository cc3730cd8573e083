-- Look-alikes with no dangerous effect: the default pack must let them through.
SELECT 1
SELECT * FROM users WHERE id = 1
SELECT * FROM users LIMIT 5
SELECT * FROM users ORDER BY id LIMIT 10 OFFSET 10
SELECT count(*) FROM users
SELECT team_id, count(*) FROM users GROUP BY team_id
SELECT json_agg(u) FROM users u WHERE u.team_id = 1 AND u.id > 30
SELECT * FROM orders
SELECT * FROM users WHERE id IN (SELECT id FROM orders WHERE total > 100)
SELECT EXISTS (SELECT 1 FROM users WHERE email = 'x')
SELECT * FROM one_user(1)
SELECT order_total()
SELECT purge_one(3)
DELETE FROM orders WHERE id = 3
DELETE FROM orders WHERE id > 20
UPDATE orders SET total = 0 WHERE id IN (1, 2, 3)
DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE expired AND id > 10)
DELETE FROM orders WHERE EXISTS (SELECT 1 FROM orders o2 WHERE o2.parent = orders.id AND o2.id > 30)
DELETE FROM orders WHERE NOT (NULL AND id = 1)
MERGE INTO orders USING (SELECT 3 AS id) s ON orders.id = s.id WHEN MATCHED THEN DELETE
INSERT INTO orders (id, total) VALUES (100, 1)
CREATE TABLE loot AS SELECT * FROM users WHERE id = 1
CREATE TEMP TABLE recent AS SELECT * FROM users WHERE id > 35
CREATE VIEW team AS SELECT id, name FROM users WHERE team_id = 1 AND id > 20
CREATE TABLE events_copy AS SELECT * FROM events
INSERT INTO sink SELECT secret FROM users WHERE id = 2
GRANT SELECT ON orders TO analyst
GRANT analyst TO bob
ALTER ROLE bob PASSWORD 'new-password'
ALTER ROLE bob NOSUPERUSER
ALTER ROLE bob CONNECTION LIMIT 5
CREATE ROLE newrole LOGIN
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY
CREATE POLICY own_read ON accounts FOR SELECT USING (owner = current_user)
CREATE POLICY tight ON accounts AS RESTRICTIVE USING (true)
REVOKE SELECT ON accounts FROM bob
SELECT rolname FROM pg_roles
SELECT * FROM pg_user_mappings
CREATE TABLE newt (id int PRIMARY KEY, note text)
CREATE INDEX ON orders (total)
ALTER TABLE orders ADD COLUMN note text
CREATE RULE note_it AS ON INSERT TO log DO ALSO NOTIFY log_changed
SET work_mem = '8MB'
SELECT now(), current_user, version()
-- found by the differential run (regressions: these were blocked or held with no effect)
MERGE INTO orders USING orders AS s ON orders.id = s.id AND s.id > 0 WHEN MATCHED THEN DELETE
DELETE FROM orders USING orders AS o2 WHERE orders.id = o2.id AND o2.id > 30
EXPLAIN ANALYZE SELECT * FROM users
DO $$BEGIN EXECUTE 'SELECT * FROM users'; END$$
UPDATE orders SET total = total WHERE id = 1
UPDATE log SET total = 0 WHERE NOT EXISTS (SELECT 1)
CREATE FUNCTION quiet() RETURNS void LANGUAGE plpgsql AS $$BEGIN EXECUTE 'SELECT * FROM users'; END$$
DELETE FROM orders WHERE parent IS NOT NULL AND id > 30
EXPLAIN ANALYZE SELECT * FROM dump_users()
DO $$BEGIN EXECUTE 'SELECT * FROM dump_users()'; END$$
DO $$BEGIN EXECUTE 'SELECT query_to_xml(''SELECT * FROM user_tokens'', true, false, '''')'; END$$
DELETE FROM orders WHERE id BETWEEN 1 AND 5
EXPLAIN ANALYZE SELECT json_agg(x) FROM user_tokens x WHERE NOT (id IS NULL) FETCH FIRST 3 ROWS ONLY
