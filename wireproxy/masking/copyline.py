"""COPY TO STDOUT rows in text and csv format: split into fields, decode, re-encode.

Only what masking needs: the raw bytes of every field are kept, so a field the masker leaves
alone goes out byte for byte as it came in. Assumes an ASCII-compatible client encoding in
which the delimiter, quote and backslash bytes never occur inside a multi-byte character
(UTF-8, LATIN*, ...).

text format (PostgreSQL's defaults: delimiter TAB, NULL `\\N`): a backslash escapes the next
character (`\\b \\f \\n \\r \\t \\v`, `\\\\`, `\\<delimiter>`, octal `\\NNN`, hex `\\xHH`), so a
delimiter preceded by an escaping backslash is data.
csv format (defaults: delimiter `,`, quote `"`, escape = quote, NULL the unquoted empty string):
inside quotes, escape + quote (or escape + escape) is a literal; a quoted empty field is ''.
"""

from __future__ import annotations

import re

from .errors import MaskingError

_TEXT_ESCAPES = {ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r",
                 ord("t"): b"\t", ord("v"): b"\v"}
_UNESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.S)
_SPLITTERS: dict[bytes, re.Pattern[bytes]] = {}


def split_line(line: bytes) -> tuple[bytes, bytes]:
    """(row, terminator): the row without its trailing "\\n" or "\\r\\n"."""
    if line.endswith(b"\r\n"):
        return line[:-2], b"\r\n"
    if line.endswith(b"\n"):
        return line[:-1], b"\n"
    return line, b""


def split_text(row: bytes, delimiter: bytes) -> list[bytes]:
    """Raw (still escaped) fields of a text-format row."""
    if b"\\" not in row:
        return row.split(delimiter)
    splitter = _SPLITTERS.get(delimiter)
    if splitter is None:
        splitter = _SPLITTERS[delimiter] = re.compile(rb"\\.|" + re.escape(delimiter), re.S)
    fields = []
    start = 0
    for m in splitter.finditer(row):
        if m.group() == delimiter:
            fields.append(row[start:m.start()])
            start = m.end()
    fields.append(row[start:])
    return fields


def _unescape_one(m: re.Match[bytes]) -> bytes:
    octal, hexa, other = m.groups()
    if octal is not None:
        return bytes((int(octal, 8) & 0xFF,))
    if hexa is not None:
        return bytes((int(hexa, 16),))
    code = other[0]
    return _TEXT_ESCAPES.get(code, other)


def unescape_text(raw: bytes) -> bytes:
    if b"\\" not in raw:
        return raw
    return _UNESCAPE.sub(_unescape_one, raw)


def escape_text(value: bytes, delimiter: bytes) -> bytes:
    out = value.replace(b"\\", b"\\\\")
    for ch, esc in ((b"\n", b"\\n"), (b"\r", b"\\r"), (b"\t", b"\\t"), (b"\b", b"\\b"),
                    (b"\f", b"\\f"), (b"\v", b"\\v")):
        if ch in out:
            out = out.replace(ch, esc)
    if delimiter not in (b"\t", b"\n", b"\r") and delimiter in out:
        out = out.replace(delimiter, b"\\" + delimiter)
    return out


def split_csv(row: bytes, delimiter: bytes, quote: bytes, escape: bytes) -> list[bytes]:
    """Raw (still quoted) fields of a csv-format row; raises MaskingError on an open quote."""
    d, q, e = delimiter[0], quote[0], escape[0]
    fields = []
    start = 0
    i = 0
    n = len(row)
    in_quotes = False
    while i < n:
        c = row[i]
        if in_quotes:
            if c == e and i + 1 < n and row[i + 1] in (q, e) and (e != q or row[i + 1] == q):
                i += 2
                continue
            if c == q:
                in_quotes = False
        elif c == q:
            in_quotes = True
        elif c == d:
            fields.append(row[start:i])
            start = i + 1
        i += 1
    if in_quotes:
        raise MaskingError("COPY csv row ends inside a quoted field")
    fields.append(row[start:])
    return fields


def unquote_csv(raw: bytes, quote: bytes, escape: bytes) -> bytes:
    if quote not in raw:
        return raw
    q, e = quote[0], escape[0]
    out = bytearray()
    in_quotes = False
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if in_quotes:
            if c == e and i + 1 < n and raw[i + 1] in (q, e) and (e != q or raw[i + 1] == q):
                out.append(raw[i + 1])
                i += 2
                continue
            if c == q:
                in_quotes = False
            else:
                out.append(c)
        elif c == q:
            in_quotes = True
        else:
            out.append(c)
        i += 1
    return bytes(out)


def quote_csv(value: bytes, delimiter: bytes, quote: bytes, escape: bytes, null: bytes) -> bytes:
    if (value == null or delimiter in value or quote in value or escape in value
            or b"\n" in value or b"\r" in value):
        body = value
        if escape != quote:
            body = body.replace(escape, escape + escape)
        body = body.replace(quote, escape + quote)
        return quote + body + quote
    return value
