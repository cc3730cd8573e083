"""RowPlan: the masks of one RowDescription (or COPY) applied to each DataRow body or COPY line."""

from __future__ import annotations

from typing import Callable

from . import copyline
from .errors import MaskingError

from .values import NULL_LEN, pack_i32, unpack_i32, SAME, Column


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
        unpack = unpack_i32
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
                        pieces.append(NULL_LEN)
                    else:
                        pieces.append(pack_i32(len(new)))
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
