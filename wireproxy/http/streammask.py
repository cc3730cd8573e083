"""Masking text that arrives in pieces (an LLM's streamed answer): feed chunks, get what may be
sent now, then `end()`.

    masker = StreamTextMasker(user_masker.mask_text)
    out = masker.feed("my card is 4111 1111")    # "my card is " (the digits might go on)
    out += masker.feed(" 1111 1111, thanks")     # "**** **** **** 1111," ...
    out += masker.end()

What is held back is a bounded tail that could be the start of an unfinished match: the last
word, with the groups of a spaced number before it (card, phone, SSN, IBAN groups), and an
unterminated PEM block. What is released is the head of the pending text masked on its own,
and only when that equals the start of the whole pending text masked: so a match is never cut
in two, and the concatenated output is what masking the whole text at once gives, but for
detectors whose matches span more than the hold bound (`max_hold` characters: then the text is
released masked as it stands, and the cut can fall inside such a match).
"""

from __future__ import annotations

import re
from typing import Callable

DEFAULT_MAX_HOLD = 4096
_GROUP = re.compile(r"[0-9()+.\-]+|[A-Z0-9]{1,4}|[A-Z]{2}[0-9]{2}")
_GROUP_END = re.compile(r"[0-9][0-9()+.\-]*$")
_BACKOFF_STEPS = 8


def _word_start(text: str, end: int, floor: int) -> int:
    while end > floor and not text[end - 1].isspace():
        end -= 1
    return end


def _groupish(text: str, start: int, end: int) -> int:
    """2: the word is a group of a spaced number (or IBAN) that may go on both ways; 1: it ends
    in one after other characters (`"4111`, `card:4111`), so it may go on to the right only;
    0: neither."""
    if _GROUP.fullmatch(text, start, end):
        return 2
    return 1 if _GROUP_END.search(text, start, end) else 0


def held_tail_start(text: str, limit: int = DEFAULT_MAX_HOLD) -> int:
    """Where the tail that might still grow into a match begins."""
    n = len(text)
    floor = max(0, n - limit)
    if n > floor and text[n - 1] in " \t":
        # "word ": finished, unless it is (or ends in) a group of a spaced number that may go on
        start = _word_start(text, n - 1, floor)
        kind = _groupish(text, start, n - 1)
        if kind == 0:
            start = n
    else:
        start = _word_start(text, n, floor)
        kind = _groupish(text, start, n)
    while kind == 2 and start - 1 > floor and text[start - 1] == " " and not text[start - 2].isspace():
        m = _word_start(text, start - 1, floor)
        kind = _groupish(text, m, start - 1)
        if kind == 0:
            break
        start = m
    pem = text.rfind("-----BEGIN", floor)
    if pem != -1:
        end = text.find("-----END", pem)
        if end == -1 or text.find("-----", end + 8) == -1:     # no complete END line yet
            start = min(start, pem)
    return start


class StreamTextMasker:
    def __init__(self, mask_text: Callable[[str], str], *, max_hold: int = DEFAULT_MAX_HOLD):
        self.mask_text = mask_text
        self.max_hold = max_hold
        self._pending = ""

    @property
    def pending(self) -> int:
        return len(self._pending)

    def feed(self, text: str) -> str:
        if not text:
            return ""
        pending = self._pending + text
        cut = held_tail_start(pending, self.max_hold)
        if cut <= 0 and len(pending) <= self.max_hold:
            self._pending = pending
            return ""
        whole = self.mask_text(pending)
        if whole == pending and cut > 0:
            # nothing to mask in all of it: the head goes as it is (masking the whole text at
            # the end could not differ on it)
            self._pending = pending[cut:]
            return pending[:cut]
        for _ in range(_BACKOFF_STEPS):
            if cut <= 0:
                break
            head = self.mask_text(pending[:cut])
            if whole.startswith(head):
                self._pending = pending[cut:]
                return head
            cut = pending.rfind(" ", 0, cut - 1) + 1      # an earlier word boundary
        if len(pending) <= self.max_hold:
            self._pending = pending
            return ""
        cut = len(pending) - self.max_hold                 # over the bound: release what must go
        self._pending = pending[cut:]
        return self.mask_text(pending[:cut])

    def end(self) -> str:
        rest, self._pending = self._pending, ""
        return self.mask_text(rest) if rest else ""
