"""What the masker works on: the result columns the relay describes, the wire constants, and
the per-value actions of a row plan (NULL, a whole-value style, a content scan in place)."""

from __future__ import annotations

import struct
from typing import Callable, NamedTuple

from .detectors import Detectors
from .errors import MaskingError
from .styles import Style

TEXT_LIKE_OIDS = frozenset({25, 1043, 1042, 19, 18, 705, 142, 0})
JSON_OID = 114
JSONB_OID = 3802
# array type OID -> element type OID
TEXT_ARRAY_OIDS: dict[int, int] = {1009: 25, 1015: 1043, 1014: 1042, 1003: 19, 1002: 18,
                                   143: 142, 199: 114, 3807: 3802}

_I32 = struct.Struct("!i")
unpack_i32 = _I32.unpack_from
pack_i32 = _I32.pack
_ARRAY_HEAD = struct.Struct("!iiI")
_ARRAY_DIM = struct.Struct("!ii")
NULL_LEN = b"\xff\xff\xff\xff"
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


SpanCheck = Callable[[str, int, int], bool]


class _Same:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SAME"


SAME = _Same()        # an action's "unchanged" answer


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


class Content:
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

class NullAction:
    __slots__ = ()
    scan = False

    def wire(self, body: bytes, pos: int, end: int) -> bytes | None:
        return None

    def text(self, value: str) -> str | None:
        return None


NULL_ACTION = NullAction()


class WholeAction:
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


class ScanAction:
    __slots__ = ("content", "kind", "binary", "check", "gate")
    scan = True

    def __init__(self, content: Content, kind: str, binary: bool) -> None:
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


def _scan_value(body: bytes, pos: int, end: int, content: Content, kind: str, binary: bool,
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


def _scan_binary_array(body: bytes, pos: int, end: int, content: Content,
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
        ln = unpack_i32(body, p)[0]
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
                pieces.append(NULL_LEN)
                added_null = True
            else:
                pieces.append(pack_i32(len(new)))
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
