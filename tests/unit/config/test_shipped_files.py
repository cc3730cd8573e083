"""Every .toml the repository ships loads with the real loaders (rules/*.toml, rules/examples/,
examples/*.toml), stacks the way its header says, keeps file:line errors when broken, and does
what it says: the PII pack masks, the agents pack reads and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocols.postgres import DataRow
from wireproxy.config import ConfigError, load_config
from wireproxy.config.packs import DEFAULT_RULES, RULES_DIR, shipped_packs
from wireproxy.config.rulefile import load_rules
from wireproxy.masking import Masker
from wireproxy.masking.masker import Column
from wireproxy.policy import Action, Policy

ROOT = Path(__file__).resolve().parents[3]
PACKS = sorted((ROOT / "rules").glob("*.toml")) + sorted((ROOT / "rules" / "examples").glob("*.toml"))
CONFIGS = sorted((ROOT / "examples").glob("*.toml"))
TEXT, BOOL, DATE = 25, 16, 1082


def test_the_shipped_packs_are_the_files_in_rules():
    assert RULES_DIR == (ROOT / "rules").resolve() and DEFAULT_RULES == RULES_DIR / "default.toml"
    assert [p.relative_to(RULES_DIR) for p in shipped_packs()] == [p.relative_to(ROOT / "rules") for p in PACKS]
    assert {"default.toml", "pii.toml", "agents.toml", "demo.toml"} <= {p.name for p in PACKS}
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_pack_loads_alone_and_after_the_default_pack(pack):
    alone = load_rules([pack])
    assert alone.rules or alone.masks
    if pack != ROOT / "rules" / "default.toml":
        stacked = load_rules([DEFAULT_RULES, pack])          # ids never collide with the default pack's
        assert len(stacked.rules) == len(load_rules([DEFAULT_RULES]).rules) + len(alone.rules)


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_command_lines_in_a_pack_header_name_packs_that_load_together(pack):
    for line in pack.read_text().splitlines():
        if line.startswith("#") and "--rules" in line:
            named = [ROOT / name for name in re.findall(r"--rules (\S+\.toml)", line)]
            assert named and all(p.exists() for p in named), line
            load_rules(named)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_example_config_loads_with_its_rules(config):
    loaded = load_config(config)
    assert loaded.postgres
    for listener in loaded.postgres:
        assert all(path.exists() for path in listener.rules), listener.rules
        ruleset = load_rules(listener.rules)
        assert ruleset.rules


@pytest.mark.parametrize("pack", PACKS + CONFIGS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_broken_copy_still_names_file_and_line(pack, tmp_path):
    text = pack.read_text()
    copy = tmp_path / pack.name
    copy.write_text(text + "\nmisspeled_key = true\n")
    lines = len((text + "\n").splitlines()) + 1
    with pytest.raises(ConfigError) as info:
        (load_config if pack in CONFIGS else lambda p: load_rules([p]))(copy)
    # appended to whatever table the file ends in: the key is named with that table's path
    assert re.fullmatch(rf"{re.escape(str(copy))}:{lines}: unknown key '(\S+\.)?misspeled_key'",
                        str(info.value)), str(info.value)


# --- the PII pack ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pii():
    masker = Masker(load_rules([DEFAULT_RULES, RULES_DIR / "pii.toml"]).masks, hash_key=b"k" * 32)
    return masker.for_user("anyone")


def _masked(pii, columns, values) -> list:
    plan = pii.plan([Column(name, "public.customers", oid) for name, oid in columns])
    body = DataRow.from_values([v.encode() if v is not None else None for v in values]).encode()[5:]
    return [None if v is None else v.decode() for v in DataRow(plan.rewrite(body)).values]


def test_the_pii_pack_masks_the_usual_columns(pii):
    columns = [("card_number", TEXT), ("Email", TEXT), ("phone", TEXT), ("ssn", TEXT), ("iban", TEXT),
               ("password_hash", TEXT), ("date_of_birth", DATE), ("email_verified", BOOL), ("name", TEXT)]
    got = _masked(pii, columns, ["4111111111111111", "alice@example.com", "+44 20 7946 0958", "123-45-6789",
                                 "DE89370400440532013000", "$2b$12$abcdefghijklmnopqrstuv", "1990-01-02", "t",
                                 "Alice"])
    card, email, phone, ssn, iban, secret, born, verified, name = got
    assert card.endswith("1111") and "411111" not in card
    assert email.endswith("@example.com") and "alice" not in email
    assert phone.endswith("0958") and "7946" not in phone
    assert ssn != "123-45-6789" and "6789" not in ssn
    assert iban.endswith("3000") and "370400" not in iban
    assert secret == "****" and born is None
    assert verified == "t" and name == "Alice"                 # look-alike names and other data pass


def test_the_pii_pack_finds_values_in_free_text(pii):
    (notes,) = _masked(pii, [("notes", TEXT)], [
        "paid with 4111 1111 1111 1111, mail bob@example.org, key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t, "
        "ssn 123-45-6789, order 4111111111111112"])
    for secret in ("4111 1111 1111 1111", "bob@", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "123-45-6789"):
        assert secret not in notes, notes
    assert "order 4111111111111112" in notes                   # not a valid card: left alone


def test_the_pii_pack_leaves_a_result_without_pii_raw():
    masker = Masker(load_rules([RULES_DIR / "pii.toml"]).masks, hash_key=b"k" * 32).for_user("x")
    plan = masker.plan([Column("id", "public.orders", 23), Column("total", "public.orders", 1700)])
    assert plan is None or not plan.masked_columns


# --- the agents pack --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def agents() -> Policy:
    return Policy(load_rules([DEFAULT_RULES, RULES_DIR / "agents.toml", RULES_DIR / "pii.toml"]))


@pytest.mark.parametrize("sql", [
    "SELECT * FROM orders WHERE id = 1", "EXPLAIN SELECT 1", "SHOW work_mem", "SET statement_timeout = 5000",
    "BEGIN", "COMMIT", "SELECT t.oid, typname FROM pg_catalog.pg_type t",
    "WITH r AS (SELECT id FROM orders) SELECT count(*) FROM r",
])
def test_agents_may_read(agents, sql):
    assert agents.judge_sql(sql, user="agent").action == Action.ALLOW


@pytest.mark.parametrize("sql, rule", [
    ("INSERT INTO orders VALUES (1)", "agents-read-only"),
    ("UPDATE orders SET total = 0 WHERE id = 1", "agents-read-only"),
    ("WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d", "agents-read-only"),
    ("COPY orders FROM STDIN", "agents-read-only"),
    ("CREATE TABLE t (a int)", "agents-no-ddl"),
    ("GRANT SELECT ON orders TO agent", "agents-no-ddl"),
    ("DO $$ BEGIN PERFORM 1; END $$", "agents-no-code"),
    ("CALL refresh_everything()", "agents-no-code"),
    ("SELECT nextval('orders_id_seq')", "agents-no-side-effects"),
    ("SELECT pg_sleep(600)", "agents-no-side-effects"),
    ("SELECT pg_try_advisory_lock(1)", "agents-no-side-effects"),
    ("SELECT pg_terminate_backend(42)", "agents-no-side-effects"),
    ("SELECT query FROM pg_stat_activity", "agents-no-server-insides"),
    ("SELECT rolpassword FROM pg_authid", "agents-no-server-insides"),
    ("SET search_path = attacker, public", "agents-no-search-path"),
])
def test_agents_may_not_write_run_code_or_look_inside(agents, sql, rule):
    decision = agents.judge_sql(sql, user="agent")
    assert decision.action == Action.BLOCK and rule in decision.matched, decision


def test_agents_reads_are_capped(agents):
    limits = agents.judge_sql("SELECT * FROM orders", user="agent").limits
    assert limits is not None and limits.max_rows == 1000 and "agents-result-size" in limits.rule_ids
