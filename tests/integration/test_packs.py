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
