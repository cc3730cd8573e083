"""Property tests for the HTTP side's pure parts.

1. SSE framing (h11's fuzz rule): any bytes either frame into events or raise SseError, nothing
   else; the raw bytes of the events are the input, whatever the split.
2. The SSE masker: any stream of events with text deltas, split anywhere, comes out as a valid
   stream whose reassembled text is the whole text masked (no secret survives a split).
3. JSON-RPC parsing never raises on any bytes.

CI runs a short slice; WIREPROXY_SLOW=1 runs the long soak.
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.http import jsonrpc
from protocols.http.sse import SseError, SseParser
from wireproxy.http.ssemask import SseMasker
from wireproxy.masking import Masker, MaskSpec

EXAMPLES = 20_000 if os.environ.get("WIREPROXY_SLOW") else 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MASK = Masker([MaskSpec(id="m", detectors=("credit_card", "email", "us_ssn"), style="partial")]).for_user("")

SSE_ALPHABET = st.sampled_from([b"data:", b"data: x", b"event: e", b":", b"\n", b"\r", b"\r\n", b" ", b"id: 1", b"{", b"}"])


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


@FUZZ
@given(st.lists(st.one_of(SSE_ALPHABET, st.binary(max_size=8)), max_size=40), st.lists(st.integers(0, 500), max_size=8))
def test_sse_framing_never_raises_anything_else(parts, cuts):
    data = b"".join(parts)
    parser = SseParser(max_event_size=200)
    events = []
    try:
        for piece in _splits(data, cuts):
            events += parser.feed(piece)
        events += parser.end()
    except SseError:
        return
    assert b"".join(e.raw for e in events) == data


WORDS = st.sampled_from(["hi ", "card ", "4111 ", "1111 ", "111", "1 ", "alice@", "example", ".com ", "123-45-",
                         "6789 ", "ok. ", "\n", "bob@x.org", " and ", '"', '{"c": "', '"}', "(", ")", ":"])


@FUZZ
@given(st.lists(WORDS, min_size=1, max_size=30), st.lists(st.integers(0, 3000), max_size=10),
       st.sampled_from(["openai", "anthropic"]))
def test_sse_masker_output_is_the_whole_text_masked(words, cuts, shape):
    pieces = words
    if shape == "openai":
        events = [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        raw = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    else:
        events = [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}} for p in pieces]
        events.append({"type": "content_block_stop", "index": 0})
        raw = b"".join(b"event: x\ndata: " + json.dumps(e).encode() + b"\n\n" for e in events)
    masker = SseMasker(MASK.mask_text)
    out = b"".join(masker.feed(p) for p in _splits(raw, cuts)) + masker.end()
    parser = SseParser()
    got = parser.feed(out) + parser.end()
    assert all(e.complete for e in got)
    text = ""
    for event in got:
        if event.data == "[DONE]":
            continue
        value = json.loads(event.data)
        if shape == "openai":
            text += value["choices"][0]["delta"].get("content") or ""
        elif value["type"] == "content_block_delta":
            text += value["delta"]["text"]
    assert text == MASK.mask_text("".join(pieces))


@FUZZ
@given(st.binary(max_size=200))
def test_jsonrpc_parse_never_raises(data):
    batch = jsonrpc.parse(data)
    assert batch is None or all(isinstance(m, dict) for m in batch.messages)
