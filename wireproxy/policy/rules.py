"""Rule types: what a loaded rule file is, and how a rule matches a statement's facts.

Built by the rule-file loader (wireproxy/config/rulefile.py, which documents the file format)
and consumed by the engine. Pure data and matching: nothing here reads files or knows masking
(a RuleSet carries the masks and custom detectors of its files as opaque values for masking/).

Names. Table and function globs are matched case-insensitively against the names in the facts
(which PostgreSQL has already folded). A glob without a schema (`users`, `pg_read_file`)
matches that name in any schema and unqualified. A glob with one (`public.users`,
`pg_catalog.lo_export`) matches the qualified name, and an unqualified name when the glob's
schema part matches a schema on the default search path: `pg_catalog`, `public`, `pg_temp` or
the session user's own schema. Role globs are case-insensitive; PUBLIC, however spelled, is
the role `public`.

Who. `users` and `except_users` are globs over the identity's name, `groups` over its groups
(all case-sensitive). `users` holds only for a known name that matches; `groups` when any of
the identity's groups matches; `except_users` takes the rule away from the names it matches
(an unnamed identity, None or "", is excepted from nothing: fail closed).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from wireproxy.policy.decision import Action
from wireproxy.policy.facttypes import StatementFacts

__all__ = ["ACTIONS", "DEFAULT_APPROVAL_TIMEOUT", "DEFAULT_SEARCH_PATH", "MODES", "Globs", "NameGlobs", "Rule", "RuleSet", "ToolSpec"]

ACTIONS = ("allow", "audit", "approve", "block")
MODES = ("enforce", "audit")
DEFAULT_SEARCH_PATH = ("pg_catalog", "public", "pg_temp")
DEFAULT_APPROVAL_TIMEOUT = 300.0   # seconds an approve rule holds a statement (5 minutes)


class Globs:
    """Shell-style globs over plain names."""

    __slots__ = ("globs", "_regex")

    def __init__(self, globs, *, ignore_case: bool = False):
        self.globs = tuple(globs)
        flags = re.IGNORECASE if ignore_case else 0
        self._regex = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in self.globs) or "(?!)", flags)

    def match(self, name: str) -> bool:
        return self._regex.match(name) is not None

    def any(self, names) -> bool:
        m = self._regex.match
        return any(m(n) is not None for n in names)

    def __repr__(self) -> str:
        return f"Globs({list(self.globs)!r})"


def _split_name(text: str) -> list[str]:
    """'"My.Schema".t' -> ['My.Schema', 't']: dots inside double quotes do not split."""
    parts, buf, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


class NameGlobs:
    """Globs over possibly schema-qualified names (tables, functions); see the module doc."""

    __slots__ = ("globs", "_any_schema", "_qualified")

    def __init__(self, globs):
        self.globs = tuple(globs)
        bare, qualified = [], []
        for g in self.globs:
            parts = _split_name(g)
            if len(parts) == 1:
                bare.append(parts[0])
            else:
                qualified.append((re.compile(fnmatch.translate(parts[-2]), re.I),
                                  re.compile(fnmatch.translate(parts[-1]), re.I)))
        self._any_schema = Globs(bare, ignore_case=True) if bare else None
        self._qualified = tuple(qualified)

    def match(self, name: str, search_path: tuple[str, ...] = DEFAULT_SEARCH_PATH) -> bool:
        schema, dot, base = name.rpartition(".")
        if self._any_schema is not None and self._any_schema.match(base):
            return True
        for schema_re, name_re in self._qualified:
            if not name_re.match(base):
                continue
            if dot:
                if schema_re.match(schema):
                    return True
            elif any(schema_re.match(s) for s in search_path):
                return True
        return False

    def any(self, names, search_path: tuple[str, ...] = DEFAULT_SEARCH_PATH) -> bool:
        return any(self.match(n, search_path) for n in names)

    def __repr__(self) -> str:
        return f"NameGlobs({list(self.globs)!r})"


@dataclass(frozen=True, eq=False)
class Rule:
    id: str
    action: Action
    message: str = ""
    mode: str = "enforce"
    source: str = ""                       # "file:line"
    statements: frozenset[str] = frozenset()
    tables: NameGlobs | None = None
    targets: NameGlobs | None = None
    functions: NameGlobs | None = None
    roles: Globs | None = None
    flags: frozenset[str] = frozenset()
    without_where: bool | None = None
    users: Globs | None = None
    groups: Globs | None = None              # globs over the identity's groups (any one matching)
    except_users: Globs | None = None        # globs: the rule does not hold for these users
    detectors: tuple[str, ...] = ()
    patterns: tuple[re.Pattern, ...] = ()
    tools: Globs | None = None
    models: Globs | None = None
    max_rows: int | None = None
    max_bytes: int | None = None
    max_session_bytes: int | None = None
    reads_all: NameGlobs | None = None       # tables read in full (StatementFacts.reads_all)
    copies: NameGlobs | None = None          # tables copied in full into a relation
    granted_roles: Globs | None = None       # roles whose membership is granted
    where_checks: frozenset[str] | None = None  # extended WHERE checks without_where counts (None: all)
    approvers: tuple[str, ...] = ()          # approve rules: who may approve ("group:x"); () anyone
    approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT   # approve rules: seconds to wait

    @property
    def effective_action(self) -> Action:
        """The action after the file's mode: an audit-mode file never blocks or holds."""
        if self.mode == "audit" and self.action > Action.AUDIT:
            return Action.AUDIT
        return self.action

    @property
    def is_limit(self) -> bool:
        return self.max_rows is not None or self.max_bytes is not None or self.max_session_bytes is not None

    @property
    def is_content(self) -> bool:
        """Looks at HTTP request content (detectors, patterns), not at SQL."""
        return bool(self.detectors or self.patterns)

    @property
    def has_sql_matchers(self) -> bool:
        return bool(self.statements or self.tables or self.targets or self.functions or self.roles
                    or self.flags or self.without_where is not None or self.reads_all or self.copies
                    or self.granted_roles)

    def matches_context(self, user: str | None, tool: str | None = None, model: str | None = None,
                        groups: frozenset[str] = frozenset()) -> bool:
        if self.users is not None and (user is None or not self.users.match(user)):
            return False
        if self.groups is not None and not self.groups.any(groups):
            return False
        if self.except_users is not None and user and self.except_users.match(user):
            return False
        if self.tools is not None and (tool is None or not self.tools.match(tool)):
            return False
        if self.models is not None and (model is None or not self.models.match(model)):
            return False
        return True

    def matches_statement(self, st: StatementFacts, search_path: tuple[str, ...] = DEFAULT_SEARCH_PATH) -> bool:
        if self.statements and st.kind not in self.statements:
            return False
        if self.without_where is not None:
            if st.kind not in ("update", "delete"):
                return False
            unbounded = st.unbounded and (self.where_checks is None or st.where_checks <= self.where_checks)
            if unbounded != self.without_where:
                return False
        if self.flags and not (self.flags & st.flags):
            return False
        if self.functions is not None and not self.functions.any(st.functions, search_path):
            return False
        if self.tables is not None and not self.tables.any(st.tables, search_path):
            return False
        if self.targets is not None and not self.targets.any(st.targets, search_path):
            return False
        if self.roles is not None and not self.roles.any(st.roles):
            return False
        if self.reads_all is not None and not self.reads_all.any(st.reads_all, search_path):
            return False
        if self.copies is not None and not self.copies.any(st.copies, search_path):
            return False
        if self.granted_roles is not None and not self.granted_roles.any(st.granted):
            return False
        return True


@dataclass(frozen=True)
class ToolSpec:
    name: str
    sql_argument: str
    dialect: str = "postgres"
    source: str = ""


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    masks: tuple = ()                      # masking.spec.MaskSpec, for masking/
    tools: tuple[ToolSpec, ...] = ()
    detectors: tuple = ()                  # masking.spec.CustomDetector
    on_parse_error: str = "block"          # "block" or "allow"
    parse_error_mode: str = "enforce"      # "audit" only when every file is in audit mode
    files: tuple[str, ...] = ()
    sensitive_tables: tuple[str, ...] = ()  # globs: what `reads_all = true` / `copies = true` mean
    _tools: dict = field(default_factory=dict, repr=False, compare=False)

    def tool(self, name: str) -> ToolSpec | None:
        if not self._tools and self.tools:
            self._tools.update((t.name, t) for t in self.tools)
        return self._tools.get(name)

    @property
    def sql_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.is_content)
