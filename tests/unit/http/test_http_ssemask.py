"""Masking SSE streams of the three LLM stream shapes: held text is flushed where each shape
ends a text stream, the stream stays valid, unchanged events keep their bytes."""

from __future__ import annotations

import json

from wireproxy.http.ssemask import SseMasker
from wireproxy.masking import Masker, MaskSpec

MASK = Masker([MaskSpec(id="m", detectors=("credit_card", "email"), style="partial")]).for_user("")
PIECES = ["Card 4111 1", "111 1111 1111 for bob@exa", "mple.org"]
WANT = "Card ****1111 for ****@example.org"


def _run(raw: bytes, step: int = 5) -> tuple[list[tuple[str | None, dict | str]], SseMasker]:
    masker = SseMasker(MASK.mask_text)
    out = b"".join(masker.feed(raw[i:i + step]) for i in range(0, len(raw), step)) + masker.end()
    events = []
    for block in out.decode().split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        text = "\n".join(data)
        events.append((name, json.loads(text) if text.startswith("{") else text))
    return events, masker


def _sse(events) -> bytes:
    return b"".join((f"event: {n}\n" if n else "").encode() + f"data: {json.dumps(d)}\n\n".encode() for n, d in events)


def test_openai_chunks_flushed_at_finish_reason():
    chunks = [(None, {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
              for p in PIECES]
    chunks.append((None, {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                          "usage": {"total_tokens": 42}}))
    events, masker = _run(_sse(chunks) + b"data: [DONE]\n\n")
    text = "".join(e["choices"][0]["delta"].get("content") or "" for _, e in events if isinstance(e, dict))
    assert text == WANT
    assert events[-1] == (None, "[DONE]")
    assert events[-2][1]["choices"][0]["finish_reason"] == "stop"
    assert masker.tokens == 42
    assert masker.transcript() == {"choice/0/content": WANT}


def test_openai_without_finish_reason_flushed_before_done():
    chunks = [(None, {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}) for p in PIECES]
    events, _ = _run(_sse(chunks) + b"data: [DONE]\n\n")
    assert "".join(e["choices"][0]["delta"].get("content") or "" for _, e in events if isinstance(e, dict)) == WANT
    assert events[-1] == (None, "[DONE]")


def test_anthropic_flushed_before_content_block_stop():
    events = [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": p}}) for p in PIECES]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out, _ = _run(_sse(events))
    assert "".join(d["delta"]["text"] for n, d in out if n == "content_block_delta") == WANT
    assert out[-1][0] == "content_block_stop"


def test_responses_api_deltas_and_done():
    events = [("response.output_text.delta", {"type": "response.output_text.delta", "item_id": "i", "content_index": 0,
                                              "delta": p}) for p in PIECES]
    events.append(("response.output_text.done", {"type": "response.output_text.done", "item_id": "i",
                                                 "content_index": 0, "text": "".join(PIECES)}))
    out, _ = _run(_sse(events))
    assert "".join(d["delta"] for n, d in out if n == "response.output_text.delta") == WANT
    assert out[-1][1]["text"] == WANT


def test_unchanged_events_keep_their_bytes():
    raw = b'event: ping\ndata: {"type":"ping"}\n\n: comment\n\ndata: not json\n\n'
    masker = SseMasker(MASK.mask_text)
    assert masker.feed(raw) + masker.end() == raw


def test_openai_tool_call_arguments_masked_across_chunks():
    args = ['{"to": "bob@exa', 'mple.org", "card": "4111 1111', ' 1111 1111"}']
    chunks = [(None, {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "pay", "arguments": ""}}]},
        "finish_reason": None}]})]
    chunks += [(None, {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": a}}]},
                                    "finish_reason": None}]}) for a in args]
    chunks.append((None, {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))
    events, _ = _run(_sse(chunks) + b"data: [DONE]\n\n")
    sent = "".join(call["function"].get("arguments", "") for _, e in events if isinstance(e, dict)
                   for call in e["choices"][0]["delta"].get("tool_calls", []))
    assert sent == MASK.mask_text("".join(args))
    assert "bob@" not in sent and "4111 1111 1111 1111" not in sent
    assert events[-2][1]["choices"][0]["finish_reason"] == "tool_calls"
