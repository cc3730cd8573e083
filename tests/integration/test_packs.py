"""The shipped packs through a real `wireproxy serve` and psycopg, as the README shows them:
the PII pack masks what the default pack lets through, the agents pack reads and nothing else."""

from __future__ import annotations

import psycopg
import pytest

from proxyprocess import ROOT

CUSTOMER = (1, "Alice", "alice@example.com", "4111111111111111", "+44 20 7946 0958", "123-45-6789",
            "called about card 5500 0000 0000 0004")


@pytest.fixture(scope="module")
def shop(pg):
    pg.psql("drop table if exists pack_customers; create table pack_customers (id int primary key, name text, "
            "email text, card_number text, phone text, ssn text, notes text, email_verified boolean default true);"
            "insert into pack_customers select g, 'c' || g, 'c' || g || '@example.com', '4111111111111111', "
            "'+1 415 555 2671', '123-45-6789', '' from generate_series(2, 3000) g;"
            "insert into pack_customers values (%s)" % ", ".join(f"'{v}'" if isinstance(v, str) else str(v)
                                                               for v in CUSTOMER))
    yield "pack_customers"
    pg.psql("drop table pack_customers")


def test_the_readme_first_minute_pii_pack(pg, shop, start_proxy):
    # README: wireproxy serve --rules rules/default.toml --rules rules/pii.toml (from the checkout,
    # which is where ProxyProcess runs it)
    proxy = start_proxy("--rules", "rules/default.toml", "--rules", "rules/pii.toml")
    sql = "select id, name, email, card_number, phone, ssn, notes, email_verified from pack_customers where id = 1"
    with psycopg.connect(pg.dsn(), autocommit=True) as direct:
        assert direct.execute(sql).fetchone()[:7] == CUSTOMER
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        ident, name, email, card, phone, ssn, notes, verified = row
        assert (ident, name, verified) == (1, "Alice", True)
        assert email.endswith("@example.com") and "alice" not in email
        assert card.endswith("1111") and "41111111" not in card
        assert phone.endswith("0958") and "7946" not in phone
        assert "6789" not in ssn and ssn == conn.execute(sql.replace("id = 1", "id = 2")).fetchone()[5]  # hashed
        assert "5500 0000 0000 0004" not in notes and notes.startswith("called about card")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-drop"):
            conn.execute("drop table pack_customers")          # the default pack still stands


def test_the_agents_pack_through_serve(pg, shop, start_proxy):
    proxy = start_proxy("--rules", str(ROOT / "rules" / "default.toml"), "--rules", str(ROOT / "rules" / "agents.toml"))
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        assert conn.execute("select count(*) from pack_customers").fetchone() == (3000,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="agents-read-only"):
            conn.execute("update pack_customers set name = 'x' where id = 1")
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="agents-result-size"):
            conn.execute("select * from pack_customers").fetchall()
        assert len(conn.execute("select * from pack_customers limit 1000").fetchall()) == 1000
    assert pg.psql("select name from pack_customers where id = 1").strip() == "Alice"


def test_the_operators_pack_holds_schema_changes_for_a_named_dba(pg, start_proxy, tmp_path):
    from test_approvals_pg import HeldClient, approvals_cli

    pg.psql("drop table if exists ops_accounts; create table ops_accounts (id int)")
    proxy = start_proxy(config=f'[admin]\nlisten = "127.0.0.1:0"\n\n[approvals]\nnotice_interval = 0.5\n\n'
                               f'[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:{pg.port}"\n'
                               f'rules = ["{ROOT / "rules" / "default.toml"}", "{ROOT / "rules" / "operators.toml"}"]\n')
    proxy.config_path = next(tmp_path.glob("wireproxy-*.toml"))
    client = HeldClient(pg.dsn(port=proxy.port), "alter table ops_accounts add column note text")
    approval = client.approval_id()
    assert approvals_cli(proxy, "approve", approval, approver="mallory").returncode == 1   # not a named DBA
    assert pg.psql("select count(*) from information_schema.columns where table_name = 'ops_accounts'").strip() == "1"
    assert approvals_cli(proxy, "approve", approval, approver="alice").returncode == 0
    client.join()
    assert client.error is None
    client.conn.close()
    assert pg.psql("select count(*) from information_schema.columns where table_name = 'ops_accounts'").strip() == "2"
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        conn.execute("insert into ops_accounts values (1)")                 # writes pass, audited
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-drop"):
            conn.execute("drop table ops_accounts")                         # the default pack's block wins
    proxy.wait_for("statement.audit", rule="operators-audit-writes")
    pg.psql("drop table ops_accounts")


def test_the_operators_pack_blocks_when_nobody_could_approve(pg, start_proxy):
    proxy = start_proxy("--rules", str(ROOT / "rules" / "default.toml"), "--rules", str(ROOT / "rules" / "operators.toml"))
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="operators-schema-change"):
            conn.execute("create table ops_never (id int)")
    assert pg.psql("select count(*) from pg_class where relname = 'ops_never'").strip() == "0"
