"""Server-sent events (text/event-stream) framing: bytes in, events out, byte-exact out again.

    parser = SseParser()
    for event in parser.feed(chunk):   # complete events only; a partial one waits for more bytes
        event.raw                      # the exact bytes of the event, blank line included
        event.name, event.data         # "message" when no `event:` field; data lines joined by \\n
    parser.end()                       # what is left at EOF, as one (incomplete) event or none

An event the caller does not change is re-sent as `event.raw`, so a stream that passes through
unchanged is the same bytes. `event.with_data(text)` re-serialises with new data, keeping the
other fields (event, id, retry, comments) in their order. Line ends may be CRLF, LF or CR, as
the spec allows. A single event larger than `max_event_size` raises SseError: the peer cannot
make the proxy buffer without limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
_EOL = re.compile(rb"\r\n|\r|\n")


class SseError(Exception):
    """The stream broke the framing rules (an event over the size cap)."""


@dataclass
class Event:
    raw: bytes
    fields: list[tuple[str, str]]        # (name, value) in order; comments as ("", text)
    complete: bool = True                # False: the stream ended before its blank line

    @property
    def name(self) -> str:
        for key, value in reversed(self.fields):
            if key == "event":
                return value
        return "message"

    @property
    def data(self) -> str:
        return "\n".join(value for key, value in self.fields if key == "data")

    @property
    def has_data(self) -> bool:
        return any(key == "data" for key, _ in self.fields)

    def with_data(self, data: str) -> bytes:
        """The event re-serialised with `data` in place of its data lines (LF line ends)."""
        out: list[str] = []
        placed = False
        for key, value in self.fields:
            if key == "data":
                if not placed:
                    out.extend(f"data: {line}" for line in data.split("\n"))
                    placed = True
            elif key == "":
                out.append(f":{value}")
            else:
                out.append(f"{key}: {value}" if value else key)
        if not placed:
            out.extend(f"data: {line}" for line in data.split("\n"))
        return ("\n".join(out) + "\n\n").encode("utf-8")


def encode_event(data: str, name: str | None = None) -> bytes:
    """A new event (one the proxy adds to a stream)."""
    head = f"event: {name}\n" if name else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + body + "\n").encode("utf-8")


def _parse_line(line: bytes) -> tuple[str, str]:
    text = line.decode("utf-8", "replace")
    if text.startswith(":"):
        return ("", text[1:])
    name, colon, value = text.partition(":")
    if colon and value.startswith(" "):
        value = value[1:]
    return (name, value)


class SseParser:
    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE):
        self.max_event_size = max_event_size
        self._buf = bytearray()
        self._pos = 0                      # where the current event starts in _buf
        self._fields: list[tuple[str, str]] = []
        self._line_start = 0
        self._ended = False

    def feed(self, data: bytes) -> list[Event]:
        if self._ended:
            raise SseError("data after end()")
        self._buf += data
        events = self._split(final=False)
        if len(self._buf) - self._pos > self.max_event_size:
            raise SseError(f"an event is larger than {self.max_event_size} bytes")
        self._compact()
        return events

    def end(self) -> list[Event]:
        """The rest at EOF: an event missing its blank line comes out with complete=False."""
        self._ended = True
        events = self._split(final=True)
        if self._line_start < len(self._buf):      # a last line without its line end
            self._fields.append(_parse_line(bytes(self._buf[self._line_start:])))
            self._line_start = len(self._buf)
        if self._pos < len(self._buf):
            events.append(Event(bytes(self._buf[self._pos:]), self._fields, complete=False))
        self._buf.clear()
        self._pos = self._line_start = 0
        self._fields = []
        return events

    def _split(self, final: bool) -> list[Event]:
        buf = self._buf
        events: list[Event] = []
        n = len(buf)
        search = _EOL.search
        start = self._line_start
        while True:
            m = search(buf, start)
            if m is None:
                break
            line_end, end = m.span()
            if end == n and end - line_end == 1 and buf[line_end] == 13 and not final:
                break                               # a CR at the end may be the start of CRLF
            if line_end > start:
                self._fields.append(_parse_line(bytes(buf[start:line_end])))
            elif self._fields or start > self._pos:
                events.append(Event(bytes(buf[self._pos:end]), self._fields))
                self._fields = []
                self._pos = end
            # (a blank line before any field starts no event: it stays in the next one's bytes)
            start = end
        self._line_start = start
        return events

    def _compact(self) -> None:
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[:self._pos]
            self._line_start -= self._pos
            self._pos = 0
