"""The masker: `[[mask]]` rules applied to result rows, COPY lines and free text.

    masker = Masker(specs, custom=detectors, hash_key=key_material)
    um = masker.for_user("alice")              # None: no mask applies to alice
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
`users` / `exempt_users` are case-sensitive globs over role names; empty `users` means everyone.

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
import struct
from collections.abc import Iterable, Sequence
from typing import Callable, NamedTuple

from . import copyline
from .detectors import Detectors
from .errors import MaskConfigError, MaskingError
from .spec import DETECTOR_NAMES, CustomDetector, MaskSpec
from .styles import REDACTED, Hasher, Style

TEXT_LIKE_OIDS = frozenset({25, 1043, 1042, 19, 18, 705, 142, 0})
JSON_OID = 114
JSONB_OID = 3802
# array type OID -> element type OID
TEXT_ARRAY_OIDS: dict[int, int] = {1009: 25, 1015: 1043, 1014: 1042, 1003: 19, 1002: 18,
                                   143: 142, 199: 114, 3807: 3802}

_I32 = struct.Struct("!i")
_unpack_i32 = _I32.unpack_from
_pack_i32 = _I32.pack
_ARRAY_HEAD = struct.Struct("!iiI")
_ARRAY_DIM = struct.Struct("!ii")
_NULL_LEN = b"\xff\xff\xff\xff"
_PLAN_CACHE_MAX = 512
_USER_CACHE_MAX = 4096


class Column(NamedTuple):
    """One result column as the relay knows it.

    name      the field name from RowDescription (an alias when the query gave one)
    table     "schema.table" (or "table") when RowDescription's table OID was resolved; None for
              expressions or before resolution
    type_oid  RowDescription's type OID; 0 = unknown (COPY), treated as text
    format    0 text, 1 binary
    attname   the table's own name for the column (from table OID + attribute number), if known
    """

    name: str
    table: str | None = None
    type_oid: int = 0
    format: int = 0
    attname: str | None = None


class _Same:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SAME"


SAME = _Same()        # an action's "unchanged" answer


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
    __slots__ = ("index", "spec", "style", "globs", "users", "exempt")

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
        self.users = tuple(re.compile(fnmatch.translate(u)).match for u in spec.users)
        self.exempt = tuple(re.compile(fnmatch.translate(u)).match for u in spec.exempt_users)

    def applies_to(self, user: str) -> bool:
        if self.users and not any(m(user) for m in self.users):
            return False
        return not any(m(user) for m in self.exempt)


# -- content replacement ------------------------------------------------------------------------

SpanCheck = Callable[[str, int, int], bool]


def _json_span_safe(text: str, s: int, e: int) -> bool:
    """Replacing text[s:e] keeps JSON well-formed: no unescaped quote, no half escape."""
    span = text[s:e]
    if '"' not in span and "\\" not in span and (s == 0 or text[s - 1] != "\\"):
        return True
    k = s
    while k > 0 and text[k - 1] == "\\":
        k -= 1
    if (s - k) % 2:
        return False                                 # starts right after an escaping backslash
    i = s
    while i < e:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= e:
                return False
            i += 2
            continue
        if ch == '"':
            return False
        i += 1
    return True


def _array_span_safe(text: str, s: int, e: int) -> bool:
    """Replacing text[s:e] keeps a text-format array literal well-formed."""
    span = text[s:e]
    return not any(ch in span for ch in '{}",\\')


class _Content:
    """The content detectors in force for one user, with the style of each."""

    __slots__ = ("detectors", "styles", "gate")

    def __init__(self, detectors: Detectors, styles: dict[str, Style]) -> None:
        self.detectors = detectors
        self.styles = styles
        self.gate = detectors.gate

    def replace(self, text: str, check: SpanCheck | None, nullable: bool,
                names: list[str] | None = None) -> str | None:
        """`text` itself when nothing is found; None when a null-style (or unsafe) hit needs the
        whole value to become NULL and `nullable`. `names`: the detectors whose gate passed."""
        hits = self.detectors.find(text, names)
        if not hits:
            return text
        parts: list[str] = []
        last = 0
        styles = self.styles
        for s, e, name in hits:
            style = styles[name]
            if nullable and (style.name == "null" or (check is not None and not check(text, s, e))):
                return None
            parts.append(text[last:s])
            parts.append(style.text_or_redact(text[s:e]))
            last = e
        parts.append(text[last:])
        return "".join(parts)


# -- column actions -----------------------------------------------------------------------------
# wire(body, pos, end) -> new value bytes | None (NULL) | SAME, for body[pos:end]
# text(value) -> new value str | None (NULL) | SAME, for a decoded COPY field

class _NullAction:
    __slots__ = ()
    scan = False

    def wire(self, body: bytes, pos: int, end: int) -> bytes | None:
        return None

    def text(self, value: str) -> str | None:
        return None


_NULL = _NullAction()


class _WholeAction:
    __slots__ = ("style", "json", "jsonb_binary", "const")
    scan = False

    def __init__(self, style: Style, kind: str, binary: bool) -> None:
        self.style = style
        self.json = kind in ("json", "jsonb")
        self.jsonb_binary = kind == "jsonb" and binary
        const = style.raw(b"", json_value=self.json) if style.name == "redact" else None
        if const is not None and self.jsonb_binary:
            const = b"\x01" + const
        self.const = const

    def wire(self, body: bytes, pos: int, end: int) -> bytes | None:
        if self.const is not None:
            return self.const
        if self.jsonb_binary:
            if end == pos or body[pos] != 1:
                return None                           # unknown jsonb version: nothing to keep
            out = self.style.raw(body[pos + 1:end], json_value=True)
            return None if out is None else b"\x01" + out
        return self.style.raw(body[pos:end], json_value=self.json)

    def text(self, value: str) -> str | None:
        out = self.style.raw(value.encode("utf-8", "surrogateescape"), json_value=self.json)
        return None if out is None else out.decode("utf-8", "surrogateescape")


class _ScanAction:
    __slots__ = ("content", "kind", "binary", "check", "gate")
    scan = True

    def __init__(self, content: _Content, kind: str, binary: bool) -> None:
        self.content = content
        self.kind = kind                               # text | json | jsonb | array:<elem kind>
        self.binary = binary
        self.gate = content.gate
        if kind in ("json", "jsonb"):
            self.check: SpanCheck | None = _json_span_safe
        elif kind.startswith("array") and not binary:
            self.check = _array_span_safe
        else:
            self.check = None

    def wire(self, body: bytes, pos: int, end: int) -> bytes | None | _Same:
        if self.kind == "text":                      # the common case, inline
            data = body[pos:end]
            names = self.gate(data)
            if not names:
                return SAME
            text = data.decode("utf-8", "surrogateescape")
            out = self.content.replace(text, None, True, names)
            if out is text:
                return SAME
            return None if out is None else out.encode("utf-8", "surrogateescape")
        if self.binary and self.kind.startswith("array"):
            return _scan_binary_array(body, pos, end, self.content, self.kind[6:])
        return _scan_value(body, pos, end, self.content, self.kind, self.binary, self.check)

    def text(self, value: str, names: list[str] | None = None) -> str | None | _Same:
        out = self.content.replace(value, self.check, True, names)
        return SAME if out is value else out


def _scan_value(body: bytes, pos: int, end: int, content: _Content, kind: str, binary: bool,
                check: SpanCheck | None) -> bytes | None | _Same:
    jsonb_binary = binary and kind == "jsonb"
    if jsonb_binary:
        if end == pos or body[pos] != 1:
            return None
        pos += 1
    data = body[pos:end]
    names = content.gate(data)
    if not names:
        return SAME
    text = data.decode("utf-8", "surrogateescape")
    out = content.replace(text, check, True, names)
    if out is text:
        return SAME
    if out is None:
        return None
    data = out.encode("utf-8", "surrogateescape")
    return b"\x01" + data if jsonb_binary else data


def _scan_binary_array(body: bytes, pos: int, end: int, content: _Content,
                       elem_kind: str) -> bytes | None | _Same:
    """Content detectors over the elements of a binary array of a text-like type."""
    if end - pos < 12:
        raise MaskingError("binary array shorter than its header")
    ndim, flags, _elem_oid = _ARRAY_HEAD.unpack_from(body, pos)
    if not 0 <= ndim <= 6:
        raise MaskingError(f"binary array with {ndim} dimensions")
    p = pos + 12
    if p + 8 * ndim > end:
        raise MaskingError("binary array dimensions past the value's end")
    count = 1 if ndim else 0
    for _ in range(ndim):
        dim, _lbound = _ARRAY_DIM.unpack_from(body, p)
        if dim < 0:
            raise MaskingError("binary array with a negative dimension")
        count *= dim
        p += 8
    check = _json_span_safe if elem_kind in ("json", "jsonb") else None
    pieces: list[bytes] = []
    last = pos
    added_null = False
    for _ in range(count):
        if p + 4 > end:
            raise MaskingError("binary array element header past the value's end")
        ln = _unpack_i32(body, p)[0]
        p += 4
        if ln < 0:
            if ln != -1:
                raise MaskingError(f"binary array element length {ln}")
            continue
        e = p + ln
        if e > end:
            raise MaskingError("binary array element past the value's end")
        new = _scan_value(body, p, e, content, elem_kind, True, check)
        if new is not SAME:
            pieces.append(body[last:p - 4])
            if new is None:
                pieces.append(_NULL_LEN)
                added_null = True
            else:
                pieces.append(_pack_i32(len(new)))
                pieces.append(new)               # type: ignore[arg-type]
            last = e
        p = e
    if p != end:
        raise MaskingError("binary array with bytes after its last element")
    if not pieces:
        return SAME
    pieces.append(body[last:end])
    out = b"".join(pieces)
    if added_null and not flags:
        out = out[:4] + b"\x00\x00\x00\x01" + out[8:]
    return out


# -- plans --------------------------------------------------------------------------------------

class RowPlan:
    """What to do to each column of the rows that follow one RowDescription (or one COPY).

    columns          the columns the plan was made for
    refuse_reason    set when a rule says binary = "refuse" and a masked non-text column is sent
                     in binary: the relay refuses the statement instead of running it
    masked_columns   indexes of columns masked whole (by a column rule)
    scanned_columns  indexes of columns the content detectors read
    """

    __slots__ = ("columns", "refuse_reason", "masked_columns", "scanned_columns",
                 "_actions", "_wires", "_ncols", "_stop", "_row_gate")

    def __init__(self, columns: tuple[Column, ...], actions: list, refuse_reason: str | None,
                 row_gate: Callable | None) -> None:
        self.columns = columns
        self.refuse_reason = refuse_reason
        self._actions = tuple(actions)
        self._wires = tuple(None if a is None else a.wire for a in actions)
        self._ncols = len(actions)
        self._stop = max((i + 1 for i, a in enumerate(actions) if a is not None), default=0)
        self.masked_columns = tuple(
            i for i, a in enumerate(actions) if a is not None and not a.scan)
        self.scanned_columns = tuple(i for i, a in enumerate(actions) if a is not None and a.scan)
        self._row_gate = row_gate

    def rewrite(self, body: bytes) -> bytes:
        """A DataRow body (after the 5-byte message header) with masked values and correct
        lengths. Returns `body` itself when nothing changed. Raises MaskingError when the
        column count differs from the plan's or a length up to the last planned column points
        outside the row. Columns after the last planned one are not walked: their bytes go out
        as they came, exactly as on the raw fast path.

        A plan with only content detectors first runs the detectors' gates over the whole body:
        a row where no detector could match goes back unread, as on the raw fast path.
        """
        row_gate = self._row_gate
        if row_gate is not None and not row_gate(body):
            return body
        n = len(body)
        if n < 2:
            raise MaskingError("DataRow shorter than its column count")
        count = (body[0] << 8) | body[1]
        if count != self._ncols:
            raise MaskingError(f"DataRow has {count} columns, RowDescription said {self._ncols}")
        wires = self._wires
        unpack = _unpack_i32
        pos = 2
        pieces: list[bytes] | None = None
        last = 0
        for i in range(self._stop):
            if pos + 4 > n:
                raise MaskingError(f"DataRow column {i}: length past the end of the row")
            ln = unpack(body, pos)[0]
            pos += 4
            if ln < 0:
                if ln != -1:
                    raise MaskingError(f"DataRow column {i}: length {ln}")
                continue
            end = pos + ln
            if end > n:
                raise MaskingError(f"DataRow column {i}: value past the end of the row")
            wire = wires[i]
            if wire is not None:
                new = wire(body, pos, end)
                if new is not SAME:
                    if pieces is None:
                        pieces = []
                    pieces.append(body[last:pos - 4])
                    if new is None:
                        pieces.append(_NULL_LEN)
                    else:
                        pieces.append(_pack_i32(len(new)))
                        pieces.append(new)
                    last = end
            pos = end
        if pieces is None:
            return body
        pieces.append(body[last:])
        return b"".join(pieces)

    def rewrite_copy_line(self, line: bytes, fmt: str = "text", *,
                          delimiter: bytes | None = None, null: bytes | None = None,
                          quote: bytes = b'"', escape: bytes | None = None) -> bytes:
        """One COPY TO STDOUT row (a CopyData payload, with its line terminator) in text or csv
        format, masked. Options as in the COPY statement; defaults are PostgreSQL's. The plan
        must have been made from the COPY's columns (`Column(name, table)`, type_oid 0). A csv
        HEADER line is not a row: forward it untouched. Binary COPY is not handled here (the
        relay refuses it when a plan is in force)."""
        row, term = copyline.split_line(line)
        esc = escape if escape is not None else quote
        if fmt == "text":
            delim = delimiter if delimiter is not None else b"\t"
            null_s = null if null is not None else b"\\N"
            fields = copyline.split_text(row, delim)
        elif fmt == "csv":
            delim = delimiter if delimiter is not None else b","
            null_s = null if null is not None else b""
            fields = copyline.split_csv(row, delim, quote, esc)
        else:
            raise ValueError(f"COPY format {fmt!r}: only text and csv are rewritten")
        if len(fields) != self._ncols:
            raise MaskingError(f"COPY row has {len(fields)} fields, expected {self._ncols}")
        changed = False
        for i, act in enumerate(self._actions):
            if act is None:
                continue
            raw = fields[i]
            if fmt == "text":
                if raw == null_s:
                    continue
                data = copyline.unescape_text(raw)
            else:
                if raw == null_s:
                    continue                              # unquoted null marker
                data = copyline.unquote_csv(raw, quote, esc)
            if act.scan:
                names = act.gate(data)
                if not names:
                    continue
                new = act.text(data.decode("utf-8", "surrogateescape"), names)
            else:
                new = act.text(data.decode("utf-8", "surrogateescape"))
            if new is SAME:
                continue
            changed = True
            if new is None:
                fields[i] = null_s
                continue
            enc = new.encode("utf-8", "surrogateescape")
            if fmt == "text":
                fields[i] = copyline.escape_text(enc, delim)
            else:
                fields[i] = copyline.quote_csv(enc, delim, quote, esc, null_s)
        if not changed:
            return line
        return delim.join(fields) + term

    def __repr__(self) -> str:
        return (f"RowPlan(masked={self.masked_columns}, scanned={self.scanned_columns}, "
                f"refuse_reason={self.refuse_reason!r})")


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
        self.content: _Content | None = (
            _Content(Detectors(styles, custom), styles) if styles else None)
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
                    actions.append(_NULL)
                elif kind in ("text", "json", "jsonb"):
                    actions.append(_WholeAction(rule.style, kind, binary))
                else:
                    actions.append(_NULL)
                    if binary and rule.refuse and refuse_reason is None:
                        refuse_reason = (
                            f"column {col.name!r} is masked by rule {rule.mask_id} but is sent"
                            f" in binary format as type {col.type_oid}, which cannot be masked"
                            " in place")
            elif content is not None and kind is not None:
                actions.append(_ScanAction(content, kind, binary))
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
        self._by_user: dict[str, UserMasker | None] = {}
        self._by_set: dict[tuple[int, ...], UserMasker] = {}

    @property
    def specs(self) -> tuple[MaskSpec, ...]:
        return tuple(c.spec for c in self._compiled)

    def for_user(self, user: str) -> UserMasker | None:
        """The masks in force for `user`, or None when no rule applies (no decoding at all)."""
        try:
            return self._by_user[user]
        except KeyError:
            pass
        applicable = tuple(c for c in self._compiled if c.applies_to(user))
        um: UserMasker | None = None
        if applicable:
            key = tuple(c.index for c in applicable)
            um = self._by_set.get(key)
            if um is None:
                um = self._by_set[key] = UserMasker(applicable, self.custom, self._text_like)
        if len(self._by_user) >= _USER_CACHE_MAX:
            self._by_user.clear()
        self._by_user[user] = um
        return um

    def strict_columns(self) -> list[tuple[str, str]]:
        """(mask id, column glob) for every strict rule, whoever it applies to."""
        return [(c.spec.id, g.pattern) for c in self._compiled if c.spec.strict for g in c.globs]
