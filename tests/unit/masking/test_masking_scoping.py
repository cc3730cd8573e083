"""Who a [[mask]] is for: `users`, `groups`, `except_users` (and `exempt_users`, its older
spelling), from the rule file to the masker's per-identity cache."""

from __future__ import annotations

import pytest

from wireproxy.config.rulefile import ConfigError, parse_rules
from wireproxy.masking import Column, Masker, MaskSpec

MASKS = '''
[[mask]]
id = "support-emails"
columns = ["email"]
groups = ["support", "tier-*"]

[[mask]]
id = "cards"
columns = ["card"]
except_users = ["auditor"]
exempt_users = ["dba-*"]

[[mask]]
id = "ssn-for-contractors"
columns = ["ssn"]
users = ["c-*"]
groups = ["contractors"]
except_users = ["c-lead"]
'''


def ids(masker: Masker, user, groups=()) -> list[str]:
    um = masker.for_user(user, frozenset(groups))
    return [] if um is None else [s.id for s in um.specs]


def test_loaded_from_the_rule_file():
    masks = {m.id: m for m in parse_rules(MASKS).masks}
    assert masks["support-emails"].groups == ("support", "tier-*")
    assert masks["cards"].except_users == ("auditor",) and masks["cards"].exempt_users == ("dba-*",)
    assert masks["ssn-for-contractors"].users == ("c-*",)


@pytest.mark.parametrize("key", ["groups", "except_users"])
def test_bad_values_are_config_errors(key):
    with pytest.raises(ConfigError) as info:
        parse_rules(f'[[mask]]\nid = "m"\ncolumns = ["e"]\n{key} = ["", "x"]\n', "masks.toml")
    assert str(info.value).startswith("masks.toml:4: ") and key in str(info.value)


@pytest.mark.parametrize("user, groups, expected", [
    ("ann", {"support"}, ["support-emails", "cards"]),
    ("ann", {"dev", "tier-2"}, ["support-emails", "cards"]),       # any group, globs
    ("ann", set(), ["cards"]),
    ("auditor", {"support"}, ["support-emails"]),                  # except_users
    ("dba-1", set(), []),                                          # exempt_users: the same thing
    ("c-7", {"contractors"}, ["cards", "ssn-for-contractors"]),    # users AND groups
    ("c-7", set(), ["cards"]),
    ("bob", {"contractors"}, ["cards"]),
    ("c-lead", {"contractors"}, ["cards"]),
    ("", {"support"}, ["support-emails", "cards"]),                # unnamed: never excepted
    (None, set(), ["cards"]),
])
def test_who_a_mask_applies_to(user, groups, expected):
    assert ids(Masker(parse_rules(MASKS).masks), user, groups) == expected


def test_an_excepted_identity_sees_raw_values():
    masker = Masker(parse_rules(MASKS).masks)
    columns = [Column("card", type_oid=25)]
    assert masker.for_user("ann").plan(columns) is not None
    assert masker.for_user("auditor", frozenset({"support"})).plan(columns) is None
    assert Masker([MaskSpec("m", columns=("e",), except_users=("*",))]).for_user("x") is None


def test_the_cache_keeps_identities_with_other_groups_apart():
    """One name, asked with and without a group, in both orders: each gets its own masks."""
    for order in ([{"support"}, set()], [set(), {"support"}]):
        masker = Masker(parse_rules(MASKS).masks)
        for groups in order * 2:
            assert ("support-emails" in ids(masker, "ann", groups)) == bool(groups)
        # identities with the same applicable masks still share one UserMasker
        assert masker.for_user("ann", frozenset({"support"})) is masker.for_user("bob", frozenset({"tier-1"}))
        assert masker.for_user("ann", {"support"}) is masker.for_user("ann", frozenset({"support"}))
