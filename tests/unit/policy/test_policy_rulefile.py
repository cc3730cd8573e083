"""Rule files: what loads, and every mistake reported with file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wireproxy.masking.spec import CustomDetector, MaskSpec
from wireproxy.policy import Action
from wireproxy.config.rulefile import ConfigError, NameGlobs, load_rules, parse_rules

DEFAULT = Path(__file__).resolve().parents[3] / "rules" / "default.toml"
EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "rules" / "examples").glob("*.toml"))

FULL = """\
mode = "enforce"
on_parse_error = "block"

[[detector]]
name = "order_ref"
pattern = "ORD-[0-9]{8}"

[[rule]]
id = "everything"
action = "approve"
message = "m"
statements = ["delete", "update"]
tables = ["public.users"]
targets = ["users"]
functions = ["lo_*"]
roles = ["public"]
flags = ["set_role"]
without_where = true
users = ["ci-*"]
tools = ["query"]
models = ["gpt-*"]

[[rule]]
id = "http"
action = "block"
detectors = ["aws_access_key", "order_ref"]
patterns = ["(?i)ignore (all )?previous instructions"]

[[rule]]
id = "limits"
action = "block"
max_rows = 10
max_bytes = 1_000
max_session_bytes = 100_000

[[mask]]
id = "cards"
columns = ["card_number", "*.pan"]
detectors = ["credit_card", "order_ref"]
style = "partial"
users = ["support"]
exempt_users = ["auditor"]
strict = true
keep_last = 2
binary = "refuse"

[[tool]]
name = "query"
sql_argument = "sql"
dialect = "mysql"
"""


def test_full_file_loads():
    rs = parse_rules(FULL, "full.toml")
    assert [r.id for r in rs.rules] == ["everything", "http", "limits"]
    r = rs.rules[0]
    assert r.action == Action.APPROVE and r.mode == "enforce" and r.source == "full.toml:9"
    assert r.statements == {"delete", "update"} and r.flags == {"set_role"} and r.without_where is True
    assert r.has_sql_matchers and not r.is_content and not r.is_limit
    assert rs.rules[1].is_content and len(rs.rules[1].patterns) == 1
    assert rs.rules[2].is_limit and rs.rules[2].max_bytes == 1000
    assert rs.detectors == (CustomDetector("order_ref", "ORD-[0-9]{8}"),)
    assert rs.masks == (MaskSpec(id="cards", columns=("card_number", "*.pan"), detectors=("credit_card", "order_ref"),
                                 style="partial", users=("support",), exempt_users=("auditor",), strict=True,
                                 keep_last=2, binary="refuse", source="full.toml:37"),)
    assert rs.tool("query").dialect == "mysql" and rs.tool("other") is None
    assert rs.on_parse_error == "block" and rs.parse_error_mode == "enforce"
    assert [r.id for r in rs.sql_rules] == ["everything", "limits"]


def test_shipped_packs_load():
    rs = load_rules([DEFAULT])
    assert len(rs.rules) >= 18 and all(r.action in (Action.BLOCK, Action.APPROVE) for r in rs.rules)
    for path in EXAMPLES:
        load_rules([DEFAULT, path])


def test_empty_file_and_defaults():
    rs = parse_rules("")
    assert rs.rules == () and rs.on_parse_error == "block"
    assert parse_rules('[[rule]]\nid = "a"\naction = "allow"\n').rules[0].mode == "enforce"


def err(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_rules(text, "rules.toml")
    return str(info.value)


@pytest.mark.parametrize("text, line, needle", [
    ("mode = \"dry\"\n", 1, "mode must be one of enforce, audit"),
    ("on_parse_error = \"maybe\"\n", 1, "on_parse_error must be one of block, allow"),
    ("modes = \"audit\"\n", 1, "unknown key 'modes'"),
    ("[rule]\nid = \"x\"\n", 1, "rule must be"),
    ("[[rule]]\nid = \"x\"\n", 1, "missing required key 'rule[0].action'"),
    ("[[rule]]\naction = \"block\"\n", 1, "missing required key 'rule[0].id'"),
    ("[[rule]]\nid = \"x\"\naction = \"deny\"\n", 3, "rule[0].action must be one of allow, audit, approve, block"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\nstatment = [\"drop\"]\n", 4, "unknown key 'rule[0].statment'"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\nstatements = \"drop\"\n", 4, "rule[0].statements must be a list"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\nstatements = [\"drop\", \"dorp\"]\n", 4,
     "unknown statement kind 'dorp'"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\nstatements = [1]\n", 4, "must be a list of a string"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\nflags = [\"setrole\"]\n", 4, "unknown flag 'setrole'"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\nwithout_where = \"yes\"\n", 4, "without_where must be true or false"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\nstatements = [\"select\"]\nwithout_where = true\n", 5,
     "without_where applies to update and delete"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\ndetectors = [\"ssn\"]\n", 4, "unknown detector 'ssn'"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\npatterns = [\"(unclosed\"]\n", 4, "bad regular expression"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\nmax_rows = 0\n", 4, "max_rows must be a positive integer"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\nmax_rows = true\n", 4, "max_rows must be an integer"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\ntables = [\"\"]\n", 4, "must not contain empty strings"),
    ("[[rule]]\nid = \"\"\naction = \"block\"\n", 2, "must not be empty"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\n\n[[rule]]\nid = \"x\"\naction = \"audit\"\n", 6,
     "duplicate id 'x' (first defined at rules.toml:2)"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\n[[mask]]\nid = \"x\"\ncolumns = [\"a\"]\n", 5, "duplicate id 'x'"),
    ("[[mask]]\nid = \"m\"\ncolumns = [\"a\"]\nstyle = \"blur\"\n", 4, "mask[0].style must be one of redact"),
    ("[[mask]]\nid = \"m\"\n", 1, "a mask must say what it masks"),
    ("[[mask]]\nid = \"m\"\ndetectors = [\"visa\"]\n", 3, "unknown detector 'visa'"),
    ("[[mask]]\nid = \"m\"\ncolumns = [\"a\"]\nbinary = \"drop\"\n", 4, "binary must be one of null, refuse"),
    ("[[mask]]\nid = \"m\"\ncolumns = [\"a\"]\nkeep_last = -1\n", 4, "must not be negative"),
    ("[[mask]]\nid = \"m\"\ncolumns = [\"a\"]\ncolour = 1\n", 4, "unknown key 'mask[0].colour'"),
    ("[[tool]]\nname = \"q\"\nsql_argument = \"sql\"\ndialect = \"oracle9\"\n", 4, "unknown SQL dialect 'oracle9'"),
    ("[[tool]]\nname = \"q\"\n", 1, "missing required key 'tool[0].sql_argument'"),
    ("[[tool]]\nname = \"q\"\nsql_argument = \"a\"\n[[tool]]\nname = \"q\"\nsql_argument = \"b\"\n", 5,
     "duplicate tool 'q'"),
    ("[[detector]]\nname = \"x\"\npattern = \"[\"\n", 3, "bad regular expression"),
    ("[[detector]]\nname = \"email\"\npattern = \"x\"\n", 2, "is a built-in detector"),
    ("[[detector]]\nname = \"bad name\"\npattern = \"x\"\n", 2, "not a valid detector name"),
    ("[[detector]]\nname = \"d\"\npattern = \"x\"\nflags = \"i\"\n", 4, "unknown key 'detector[0].flags'"),
    ("[[rule]]\nid = \"x\"\naction = \"block\"\n[[rule]]\nid = \"y\"\naction = \"block\"\nusers = \"bob\"\n", 7,
     "rule[1].users must be a list"),
    ("mode = \n", 1, "invalid TOML"),
])
def test_errors_name_file_line_and_key(text, line, needle):
    message = err(text)
    assert message.startswith(f"rules.toml:{line}: "), message
    assert needle in message, message
    assert "\n" not in message


def test_error_in_second_file_names_that_file(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text('[[rule]]\nid = "x"\naction = "block"\n')
    b = tmp_path / "b.toml"
    b.write_text('# comment\n\n[[rule]]\nid = "x"\naction = "audit"\n')
    with pytest.raises(ConfigError) as info:
        load_rules([a, b])
    assert re.match(rf"{re.escape(str(b))}:4: duplicate id 'x' \(first defined at {re.escape(str(a))}:2\)",
                    str(info.value))


def test_missing_file():
    with pytest.raises(ConfigError) as info:
        load_rules(["/nonexistent/rules.toml"])
    assert "/nonexistent/rules.toml: file not found" in str(info.value)


def test_detectors_from_another_file(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text('[[detector]]\nname = "ticket"\npattern = "T-[0-9]+"\n')
    b = tmp_path / "b.toml"
    b.write_text('[[mask]]\nid = "m"\ndetectors = ["ticket"]\n')
    rs = load_rules([a, b])
    assert rs.masks[0].detectors == ("ticket",)


def test_name_globs():
    g = NameGlobs(["users", "public.orders", "audit.*", '"My.Schema".T*'])
    assert g.match("users") and g.match("public.users") and g.match("other.users") and g.match("USERS")
    assert g.match("public.orders") and g.match("orders") and not g.match("other.orders")
    assert g.match("audit.log") and not g.match("log") and g.match("log", ("audit",))
    assert g.match("My.Schema.tab")  # quotes keep a dotted schema name whole
    assert NameGlobs(["pg_catalog.lo_*"]).match("lo_export")
    assert NameGlobs(["lo_*"]).match("pg_catalog.lo_export")
