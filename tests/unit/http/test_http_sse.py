"""SSE framing: every case whole, byte by byte and split anywhere; unchanged events are re-sent
as the exact bytes they came in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.http.sse import Event, SseError, SseParser, encode_event

STREAM = (b"event: message_start\ndata: {\"a\": 1}\n\n"
          b": keep-alive comment\n\n"
          b"id: 7\r\ndata: line one\r\ndata: line two\r\n\r\n"
          b"data:no-space\rretry: 100\n\n"
          b"data: [DONE]\n\n")


def _events(chunks) -> list[Event]:
    parser = SseParser()
    out = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out + parser.end()


def _check(events: list[Event]) -> None:
    assert [e.name for e in events] == ["message_start", "message", "message", "message", "message"]
    assert events[0].data == '{"a": 1}'
    assert events[1].fields == [("", " keep-alive comment")] and not events[1].has_data
    assert events[2].data == "line one\nline two"
    assert events[3].data == "no-space"
    assert events[4].data == "[DONE]"
    assert b"".join(e.raw for e in events) == STREAM


def test_whole_buffer():
    _check(_events([STREAM]))


def test_byte_by_byte():
    _check(_events([STREAM[i:i + 1] for i in range(len(STREAM))]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts):
    cuts = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)])]
    _check(_events(pieces))


def test_partial_event_at_eof_comes_out_incomplete():
    parser = SseParser()
    assert parser.feed(b"data: {\"x\"") == []
    (event,) = parser.end()
    assert not event.complete and event.data == '{"x"' and event.raw == b"data: {\"x\""


def test_with_data_keeps_other_fields():
    (event,) = _events([b"event: delta\nid: 3\ndata: a\ndata: b\n\n"])
    assert event.with_data("x\ny") == b"event: delta\nid: 3\ndata: x\ndata: y\n\n"
    assert encode_event('{"k": 1}', "delta") == b'event: delta\ndata: {"k": 1}\n\n'


def test_oversized_event_is_refused():
    parser = SseParser(max_event_size=100)
    with pytest.raises(SseError):
        parser.feed(b"data: " + b"x" * 200)
