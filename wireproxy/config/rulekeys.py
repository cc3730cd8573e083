"""Rule-file keys for who a rule or mask is for (issue 12), what a statement does (issue 11)
and approvals.

    [[rule]]                    # and [[mask]]: all case-sensitive globs
    users = ["ci-*"]            # the identity's name matches one (a known name only)
    groups = ["contractors"]    # one of the identity's groups matches one
    except_users = ["ci-admin"] # never for these names ([[mask]]: exempt_users is the older
                                # spelling; both may be given, they add up)

    sensitive_tables = ["users", "payments.*"]   # top level, any file: merged across files

    [[rule]]
    reads_all = true            # a sensitive table read in full (or a list of globs)
    copies = ["users"]          # a table copied in full into a relation (true: sensitive_tables)
    granted_roles = ["pg_read_all_data"]   # membership of these roles granted (GRANT r TO x)
    without_where = true
    where_checks = []           # which extended tautology checks count (default: all of
                                # policy.facttypes.WHERE_CHECKS; [] = literal tautologies only)
    action = "approve"
    approvers = ["alice", "group:oncall"]   # approve rules only; empty: anyone but the requester
    timeout = "5m"              # approve rules only: "90s", "5m", "1h" or seconds (default 5m)

Every mistake is a ConfigError at the key's file:line.
"""

from __future__ import annotations

import re

from wireproxy.config.tomlfile import Checker, TomlFile
from wireproxy.policy.decision import Action
from wireproxy.policy.facttypes import WHERE_CHECKS
from wireproxy.policy.rules import DEFAULT_APPROVAL_TIMEOUT, Globs, NameGlobs

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_APPROVER = re.compile(r"^(group:)?[^\s:]+$")


def _globs(c: Checker, key: str) -> tuple[str, ...]:
    """A list of non-empty globs; () when absent or empty."""
    c.seen.add(key)
    if key not in c.table:
        return ()
    values = c.get_list(key, str)
    for v in values:
        if not v.strip():
            raise c.error(key, f"{c.name(key)} must not contain empty strings")
    return tuple(values)


def rule_scope(c: Checker) -> dict:
    """users, groups, except_users of a [[rule]]: Rule keyword arguments (None: not given)."""
    out: dict = {}
    for key in ("users", "groups", "except_users"):
        globs = _globs(c, key)
        out[key] = Globs(globs) if globs else None
    return out


def mask_scope(c: Checker) -> dict:
    """users, groups, except_users, exempt_users of a [[mask]]: MaskSpec keyword arguments."""
    return {key: _globs(c, key) for key in ("users", "groups", "except_users", "exempt_users")}


def sensitive_tables(files: list[TomlFile]) -> tuple[str, ...]:
    """The top-level `sensitive_tables` of every file, in order."""
    out: list[str] = []
    for f in files:
        c = Checker(f, ())
        if "sensitive_tables" not in f.data:
            continue
        values = c.get_list("sensitive_tables", str)
        for v in values:
            if not v.strip():
                raise c.error("sensitive_tables", "sensitive_tables must not contain empty strings")
        out.extend(values)
    return tuple(out)


def _tables(c: Checker, key: str, sensitive: tuple[str, ...]) -> NameGlobs | None:
    """`true` (the sensitive tables), a list of globs, or absent. `false` is refused: leave the
    key out instead, so a rule never silently matches nothing."""
    value = c.get(key, (bool, list))
    if value is None:
        return None
    if value is True:
        if not sensitive:
            raise c.error(key, f"{c.name(key)} = true needs sensitive_tables (a top-level list of "
                               f"table globs in some rule file), or give the globs here")
        return NameGlobs(sensitive)
    if value is False:
        raise c.error(key, f"{c.name(key)} must be true or a list of table globs (leave it out to match "
                           f"any statement)")
    globs = c.get_list(key, str)
    if not globs or not all(g.strip() for g in globs):
        raise c.error(key, f"{c.name(key)} must be a non-empty list of non-empty table globs")
    return NameGlobs(globs)


def depth_keys(c: Checker, sensitive: tuple[str, ...], without_where: bool | None) -> dict:
    """reads_all, copies, granted_roles, where_checks: Rule keyword arguments."""
    out: dict = {"reads_all": _tables(c, "reads_all", sensitive), "copies": _tables(c, "copies", sensitive)}
    roles = c.get_list("granted_roles", str) if "granted_roles" in c.table else None
    c.seen.add("granted_roles")
    if roles is not None:
        if not roles or not all(r.strip() for r in roles):
            raise c.error("granted_roles", f"{c.name('granted_roles')} must be a non-empty list of role globs")
        out["granted_roles"] = Globs(roles, ignore_case=True)
    if "where_checks" in c.table:
        checks = c.get_list("where_checks", str)
        for check in checks:
            if check not in WHERE_CHECKS:
                raise c.error("where_checks", f"{c.name('where_checks')}: unknown check {check!r} "
                                              f"(known: {', '.join(WHERE_CHECKS)})")
        if without_where is None:
            raise c.error("where_checks", f"{c.name('where_checks')} only applies with without_where")
        out["where_checks"] = frozenset(checks)
    c.seen.add("where_checks")
    return out


def parse_duration(value) -> float | None:
    """90, 90.5, "90s", "5m", "1h" -> seconds; None when it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    return None


def approval_keys(c: Checker, action: Action) -> dict:
    """approvers and timeout, allowed on approve rules only."""
    out: dict = {}
    for key in ("approvers", "timeout"):
        if key in c.table and action != Action.APPROVE:
            raise c.error(key, f"{c.name(key)} is only allowed on rules with action = \"approve\"")
    if "approvers" in c.table:
        approvers = c.get_list("approvers", str)
        for name in approvers:
            if not _APPROVER.match(name) or name == "group:":
                raise c.error("approvers", f"{c.name('approvers')}: {name!r} is not a user name or "
                                           f"\"group:NAME\"")
        out["approvers"] = tuple(approvers)
    c.seen.add("approvers")
    if "timeout" in c.table:
        seconds = parse_duration(c.get("timeout", (str, int, float)))
        if seconds is None or seconds <= 0:
            raise c.error("timeout", f"{c.name('timeout')} must be a positive duration: \"90s\", \"5m\", "
                                     f"\"1h\" or a number of seconds, not {c.table['timeout']!r}")
        out["approval_timeout"] = seconds
    else:
        out["approval_timeout"] = DEFAULT_APPROVAL_TIMEOUT
    c.seen.add("timeout")
    return out
