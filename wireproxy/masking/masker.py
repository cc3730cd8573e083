"""The masker: `[[mask]]` rules applied to result rows, COPY lines and free text.

    masker = Masker(specs, custom=detectors, hash_key=key_material)
    um = masker.for_user("alice", groups)      # None: no mask applies to alice (in those groups)
    plan = um.plan(columns)                    # at RowDescription; None: forward rows raw
    if plan is not None and plan.refuse_reason: refuse the statement
    body = plan.rewrite(body)                  # per DataRow body

Which columns a rule names (`MaskSpec.columns`, globs, compared case-insensitively):

    "email"            a column called email, in any table or none (expressions, aliases);
    "users.email"      email of a table called users in any schema;
    "public.users.email"
                       email of public.users;
    "*.pan"            pan in any table, and also a "pan" column whose table is unknown.

A glob's column part is compared with both `Column.name` (what RowDescription says, an alias if
the query gave one) and `Column.attname` (the table's own column name, when the relay resolved
the table OID and attribute number). A table or schema part needs `Column.table` ("schema.table",
or "table" when the schema is unknown; split at the first dot); when that part of the column is
unknown, only a glob whose part is exactly "*" matches it. `fnmatch` syntax: `*`, `?`, `[..]`.
Who: `users`, `except_users` (and its older spelling `exempt_users`: they add up) are
case-sensitive globs over the identity's name, `groups` over its groups. A mask applies when
`users` is empty or matches, and `groups` is empty or matches one of the identity's groups, and
no `except_users` glob matches the name (an excepted identity sees raw values; an unnamed one,
"" or None, is never excepted: fail closed).

Whole-column rules and content detectors are independent parts of one `[[mask]]`: its `columns`
are masked whole, its `detectors` scan every text-like column of every result (and COPY data,
notifications, error and notice fields) for that user. A column named by several rules gets the
most restrictive style (null > redact > hash > partial); a detector named by several rules uses
the style of the first.

Types (RowDescription's type OID):
- text-like, masked in place in text and binary format: text 25, varchar 1043, bpchar 1042,
  name 19, "char" 18, unknown 705, xml 142, json 114 and jsonb 3802 (binary jsonb keeps its
  version byte 1), OID 0 (unknown: COPY columns) and any OID passed in `text_like_oids`
  (citext, enums, domains: their OIDs differ per database, the relay looks them up);
- arrays of those (text[] 1009, varchar[] 1015, ...): content detectors mask inside the elements
  (binary arrays element by element); a whole-column rule sends NULL;
- any other type named by a rule is sent as NULL in both formats: "****" in an int4 or date
  column would break every driver that parses it. In binary format a rule with
  `binary = "refuse"` sets `RowPlan.refuse_reason` instead, and the relay refuses the statement.

A json/jsonb value masked whole becomes a JSON string (`"****"`); a detection inside JSON, or
inside a text-format array, that cannot be replaced without breaking the syntax (it spans a quote
or half an escape) turns the whole value to NULL.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import Callable, NamedTuple

from .detectors import Detectors
from .errors import MaskConfigError
from .spec import DETECTOR_NAMES, CustomDetector, MaskSpec
from .styles import REDACTED, Hasher, Style

from .values import (JSON_OID, JSONB_OID, TEXT_ARRAY_OIDS, TEXT_LIKE_OIDS,
                     Column, Content, NULL_ACTION, ScanAction, WholeAction)
from .rowplan import RowPlan

_PLAN_CACHE_MAX = 512
_USER_CACHE_MAX = 4096


# -- globs --------------------------------------------------------------------------------------

def _compile_glob(pattern: str) -> Callable[[str], object]:
    return re.compile(fnmatch.translate(pattern.lower())).match


class _ColumnGlob:
    __slots__ = ("pattern", "_column", "_table", "_schema")

    def __init__(self, pattern: str) -> None:
        parts = pattern.split(".")
        if not 1 <= len(parts) <= 3 or any(not p.strip() for p in parts):
            raise MaskConfigError(
                f"column glob {pattern!r}: expected column, table.column or schema.table.column")
        self.pattern = pattern
        self._column = _compile_glob(parts[-1])
        self._table = None if len(parts) < 2 else (parts[-2] == "*", _compile_glob(parts[-2]))
        self._schema = None if len(parts) < 3 else (parts[-3] == "*", _compile_glob(parts[-3]))

    def matches(self, names: tuple[str, ...], schema: str | None, table: str | None) -> bool:
        if not any(self._column(n) for n in names):
            return False
        for part, value in ((self._table, table), (self._schema, schema)):
            if part is None:
                continue
            star, match = part
            if value is None:
                if not star:
                    return False
            elif not match(value):
                return False
        return True


def _column_keys(col: Column) -> tuple[tuple[str, ...], str | None, str | None]:
    names = (col.name.lower(),) if not col.attname or col.attname == col.name else (
        col.name.lower(), col.attname.lower())
    schema = table = None
    if col.table:
        first, dot, rest = col.table.partition(".")
        schema, table = (first.lower(), rest.lower()) if dot else (None, first.lower())
    return names, schema, table


class _CompiledSpec:
    __slots__ = ("index", "spec", "style", "globs", "users", "groups", "exempt")

    def __init__(self, index: int, spec: MaskSpec, hasher: Hasher | None,
                 known_detectors: set[str]) -> None:
        where = f"mask {spec.id!r}" + (f" ({spec.source})" if spec.source else "")
        try:
            self.style = Style(spec.style, spec.keep_last, hasher)
            if spec.binary not in ("null", "refuse"):
                raise MaskConfigError(f"binary must be \"null\" or \"refuse\", not {spec.binary!r}")
            for name in spec.detectors:
                if name not in known_detectors:
                    raise MaskConfigError(f"unknown detector {name!r}")
            self.globs = tuple(_ColumnGlob(g) for g in spec.columns)
        except MaskConfigError as exc:
            raise MaskConfigError(f"{where}: {exc}") from None
        self.index = index
        self.spec = spec
        self.users = _matchers(spec.users)
        self.groups = _matchers(spec.groups)
        self.exempt = _matchers(spec.except_users + spec.exempt_users)

    def applies_to(self, user: str, groups: frozenset[str]) -> bool:
        if self.users and not any(m(user) for m in self.users):
            return False
        if self.groups and not any(m(g) for m in self.groups for g in groups):
            return False
        return not (user and any(m(user) for m in self.exempt))


def _matchers(globs: tuple[str, ...]) -> tuple[Callable[[str], object], ...]:
    return tuple(re.compile(fnmatch.translate(g)).match for g in globs)


class _Rule(NamedTuple):
    style: Style
    refuse: bool
    mask_id: str


_KEY_DETAIL = re.compile(
    r"\((?P<cols>[^()=]*(?:\([^()]*\)[^()=]*)*)\)=\((?P<vals>.*?)\)"
    r"(?=\s+(?:already|is|conflicts)\b|\.?\s*$|,)", re.S)
_FAILING_ROW = re.compile(r"(Failing row contains \()(.*)(\))", re.S)
_IDENT = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')


class UserMasker:
    """The masks in force for one user (shared by all users with the same applicable rules)."""

    __slots__ = ("specs", "content", "_column_specs", "_text_like", "_plans", "_strict")

    def __init__(self, compiled: Sequence[_CompiledSpec], custom: Sequence[CustomDetector],
                 text_like_oids: frozenset[int]) -> None:
        self.specs: tuple[MaskSpec, ...] = tuple(c.spec for c in compiled)
        self._column_specs = tuple(c for c in compiled if c.globs)
        self._text_like = text_like_oids
        styles: dict[str, Style] = {}
        for c in compiled:
            for name in c.spec.detectors:
                styles.setdefault(name, c.style)
        self.content: Content | None = (
            Content(Detectors(styles, custom), styles) if styles else None)
        self._plans: dict[tuple, RowPlan | None] = {}
        self._strict = [(c.spec.id, g.pattern) for c in compiled if c.spec.strict for g in c.globs]

    @property
    def detector_names(self) -> tuple[str, ...]:
        return () if self.content is None else self.content.detectors.names

    def strict_columns(self) -> list[tuple[str, str]]:
        """(mask id, column glob) of this user's strict rules: the policy engine blocks queries
        that use such a column inside an expression."""
        return list(self._strict)

    def _column_rule(self, col: Column) -> _Rule | None:
        if not self._column_specs:
            return None
        names, schema, table = _column_keys(col)
        best: _CompiledSpec | None = None
        refuse = False
        for c in self._column_specs:
            if any(g.matches(names, schema, table) for g in c.globs):
                if best is None or c.style.rank > best.style.rank:
                    best = c
                refuse = refuse or c.spec.binary == "refuse"
        if best is None:
            return None
        return _Rule(best.style, refuse, best.spec.id)

    def _kind(self, oid: int, text_like: frozenset[int]) -> str | None:
        if oid == JSON_OID:
            return "json"
        if oid == JSONB_OID:
            return "jsonb"
        if oid in TEXT_LIKE_OIDS or oid in text_like:
            return "text"
        elem = TEXT_ARRAY_OIDS.get(oid)
        if elem is not None:
            return "array:" + ("json" if elem == JSON_OID else "jsonb" if elem == JSONB_OID
                               else "text")
        return None

    def plan(self, columns: Sequence[Column], text_like_oids: Iterable[int] = ()) -> RowPlan | None:
        """The plan for rows described by `columns`; None when no column is masked and no
        content detector is in force (the relay forwards the rows as raw bytes). Cached by
        columns."""
        cols = tuple(c if isinstance(c, Column) else Column(*c) for c in columns)
        extra = frozenset(text_like_oids)
        key = (cols, extra)
        try:
            return self._plans[key]
        except KeyError:
            pass
        text_like = self._text_like | extra
        actions: list = []
        refuse_reason = None
        content = self.content
        for col in cols:
            kind = self._kind(col.type_oid, text_like)
            binary = col.format == 1
            rule = self._column_rule(col)
            if rule is not None:
                if rule.style.name == "null":
                    actions.append(NULL_ACTION)
                elif kind in ("text", "json", "jsonb"):
                    actions.append(WholeAction(rule.style, kind, binary))
                else:
                    actions.append(NULL_ACTION)
                    if binary and rule.refuse and refuse_reason is None:
                        refuse_reason = (
                            f"column {col.name!r} is masked by rule {rule.mask_id} but is sent"
                            f" in binary format as type {col.type_oid}, which cannot be masked"
                            " in place")
            elif content is not None and kind is not None:
                actions.append(ScanAction(content, kind, binary))
            else:
                actions.append(None)
        if all(a is None for a in actions):
            plan = None
        else:
            row_gate = None
            if content is not None and not content.detectors.always_scans and all(
                    a is None or a.scan for a in actions):
                row_gate = content.detectors.could_match
            plan = RowPlan(cols, actions, refuse_reason, row_gate)
        if len(self._plans) >= _PLAN_CACHE_MAX:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def mask_text(self, text: str, column: Column | str | None = None) -> str:
        """Free text (a COPY field, a notification payload, an error field). With `column`, a
        column rule that matches it masks the whole text; otherwise the content detectors run.
        Null-style hits become "****" (text has no NULL)."""
        if column is not None:
            rule = self._column_rule(Column(column) if isinstance(column, str) else column)
            if rule is not None:
                return rule.style.text_or_redact(text)
        if self.content is None:
            return text
        out = self.content.replace(text, None, False)
        return text if out is None else out

    def mask_message(self, text: str) -> str:
        """An ErrorResponse/NoticeResponse field (message, detail, where, ...).

        On top of the content detectors: in a key detail (`Key (email)=(a@b.com) already
        exists.`) the values are masked when any key column is masked by a column rule, and a
        `Failing row contains (...)` detail is masked whole when this user has any column rule
        (the table is unknown there, so every column might be a masked one)."""
        if self._column_specs:
            if ")=(" in text:
                text = _KEY_DETAIL.sub(self._mask_key_detail, text)
            if "Failing row contains (" in text:
                text = _FAILING_ROW.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
        return self.mask_text(text)

    def _mask_key_detail(self, m: re.Match[str]) -> str:
        for im in _IDENT.finditer(m.group("cols")):
            name = im.group(1).replace('""', '"') if im.group(1) else im.group(2)
            rule = self._column_rule(Column(name))
            if rule is not None:
                vals = rule.style.text_or_redact(m.group("vals"))
                return f"({m.group('cols')})=({vals})"
        return m.group()


class Masker:
    """All `[[mask]]` rules of a configuration, compiled once.

    specs           the `[[mask]]` rules, in file order
    custom          `[[detector]]` regexes that rules may name
    hash_key        key material for the hash style (required when a rule uses it)
    text_like_oids  extra type OIDs to treat as text (e.g. citext's, when known up front)
    """

    def __init__(self, specs: Sequence[MaskSpec] = (), custom: Sequence[CustomDetector] = (),
                 hash_key: bytes = b"", text_like_oids: Iterable[int] = ()) -> None:
        self.custom = tuple(custom)
        known = set(DETECTOR_NAMES)
        for c in self.custom:
            if c.name in known:
                raise MaskConfigError(f"detector {c.name!r}: name already taken")
            try:
                re.compile(c.pattern)
            except re.error as exc:
                raise MaskConfigError(
                    f"detector {c.name!r}: pattern does not compile: {exc}") from None
            known.add(c.name)
        seen: set[str] = set()
        for s in specs:
            if s.id in seen:
                raise MaskConfigError(f"mask {s.id!r}: duplicate id")
            seen.add(s.id)
        hasher = Hasher(hash_key) if hash_key else None
        self._compiled = tuple(_CompiledSpec(i, s, hasher, known) for i, s in enumerate(specs))
        self._text_like = frozenset(text_like_oids)
        self._by_user: dict[tuple[str, frozenset[str]], UserMasker | None] = {}
        self._by_set: dict[tuple[int, ...], UserMasker] = {}

    @property
    def specs(self) -> tuple[MaskSpec, ...]:
        return tuple(c.spec for c in self._compiled)

    def for_user(self, user: str, groups: frozenset[str] = frozenset()) -> UserMasker | None:
        """The masks in force for `user` in `groups`, or None when no rule applies (no
        decoding at all)."""
        who = (user or "", frozenset(groups))
        try:
            return self._by_user[who]
        except KeyError:
            pass
        applicable = tuple(c for c in self._compiled if c.applies_to(*who))
        um: UserMasker | None = None
        if applicable:
            key = tuple(c.index for c in applicable)
            um = self._by_set.get(key)
            if um is None:
                um = self._by_set[key] = UserMasker(applicable, self.custom, self._text_like)
        if len(self._by_user) >= _USER_CACHE_MAX:
            self._by_user.clear()
        self._by_user[who] = um
        return um

    def strict_columns(self) -> list[tuple[str, str]]:
        """(mask id, column glob) for every strict rule, whoever it applies to."""
        return [(c.spec.id, g.pattern) for c in self._compiled if c.spec.strict for g in c.globs]
