"""Text from others (SQL, user and application names, reasons), made inert for a terminal."""

from __future__ import annotations

from typing import Any


def inert(value: Any, keep: str = "") -> str:
    """Control and format characters as escapes (ESC as \\x1b, U+202E as \\u202e): what a
    client wrote cannot move the reader's cursor, recolour the screen or reorder the text.
    `keep` names characters left alone (a transcript keeps tabs)."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)
