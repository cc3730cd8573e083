"""Masking an SSE stream event by event, with text deltas masked across events.

LLM streams send an answer as many small text deltas; a card number can arrive as "4111 1"
in one event and "111 1111 1111" in the next. Each delta stream (an OpenAI choice, an
Anthropic content block, a Responses output part) gets its own StreamTextMasker: its event
carries what may be sent now (possibly ""), and the held-back tail is sent before the event
that ends that stream (OpenAI: in the delta of the chunk with `finish_reason`; Anthropic: as
an extra content_block_delta before content_block_stop; Responses: as an extra delta before
response.output_text.done; any stream: before `[DONE]` or at the end). Every other string in
an event is masked in place. An event that masking leaves unchanged is forwarded as its raw
bytes; data that is not JSON is masked as text.

`on_json(value) -> value | None` lets a caller (the MCP inspector) handle JSON events its own
way instead (None: drop the event).
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

from protocols.http.sse import Event, SseParser, encode_event

from .jsonwalk import map_strings, usage_tokens
from .streammask import StreamTextMasker

MaskText = Callable[[str], str]
_OPENAI_TEXT = ("content", "reasoning_content", "refusal")


class _Out(str):
    """Text a delta stream already masked: the in-place masking of the rest leaves it alone."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _mask_unless_out(mask_text: MaskText) -> MaskText:
    return lambda text: text if isinstance(text, _Out) else mask_text(text)


class _Delta:
    """One stream of text deltas and where its held text goes when flushed."""

    def __init__(self, mask_text: MaskText, template: tuple[str | None, dict, tuple]):
        self.masker = StreamTextMasker(mask_text)
        self.template = template          # (event name, last JSON, path of the text field)
        self.text: list[str] = []         # what was sent, for the transcript


class SseMasker:
    def __init__(self, mask_text: MaskText | None, on_json: Callable[[Any], Any] | None = None):
        self.mask_text = mask_text
        self.on_json = on_json
        self._mask_rest = _mask_unless_out(mask_text) if mask_text is not None else None
        self.parser = SseParser()
        self.deltas: dict[tuple, _Delta] = {}
        self.tokens: int | None = None
        self.events = 0

    # -- public ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        return b"".join(self._event(e) for e in self.parser.feed(data))

    def end(self) -> bytes:
        out = b"".join(self._event(e) for e in self.parser.end())
        return out + self._flush_all()

    def transcript(self) -> dict[str, str]:
        return {"/".join(map(str, key)): "".join(d.text) for key, d in self.deltas.items() if d.text}

    # -- events -----------------------------------------------------------------------------

    def _event(self, event: Event) -> bytes:
        self.events += 1
        if not event.has_data:
            return event.raw
        data = event.data
        if data.strip() == "[DONE]":
            return self._flush_all() + event.raw
        try:
            value = json.loads(data)
        except ValueError:
            if self.mask_text is None:
                return event.raw
            masked = self.mask_text(data)
            return event.raw if masked == data else event.with_data(masked)
        tokens = usage_tokens(value)
        if tokens is not None:
            self.tokens = max(self.tokens or 0, tokens) if event.name != "message_delta" else (self.tokens or 0) + tokens
        if self.on_json is not None:
            new = self.on_json(value)
            if new is None:
                return b""
            return event.raw if new is value else event.with_data(_dumps(new))
        if self.mask_text is None:
            return event.raw
        before = b""
        new, changed = self._llm_event(event.name, value)
        if isinstance(new, tuple):
            before, new = new
        rest, rest_changed = map_strings(new, self._mask_rest)
        if not (changed or rest_changed):
            return before + event.raw
        return before + event.with_data(_dumps(rest))

    def _llm_event(self, name: str, value: Any):
        """Deltas of the three stream shapes; returns (value, changed) or ((prefix, value), changed)."""
        if not isinstance(value, dict):
            return value, False
        if isinstance(value.get("choices"), list):                 # OpenAI chat / completions
            return self._openai(name, value)
        kind = value.get("type")
        if kind == "content_block_delta":                           # Anthropic
            return self._anthropic_delta(name, value)
        if kind == "content_block_stop":
            flushed = self._flush(("block", value.get("index")))
            return ((flushed, value), False) if flushed else (value, False)
        if kind in ("response.output_text.delta", "response.refusal.delta",
                    "response.function_call_arguments.delta"):      # OpenAI Responses
            return self._responses_delta(name, value)
        if kind in ("response.output_text.done", "response.refusal.done",
                    "response.function_call_arguments.done"):
            key = ("item", value.get("item_id"), value.get("content_index", 0))
            flushed = self._flush(key)
            return ((flushed, value), False) if flushed else (value, False)
        return value, False

    def _openai(self, name: str, value: dict):
        changed = False
        value = copy.copy(value)
        choices = []
        for choice in value["choices"]:
            if isinstance(choice, dict):
                choice, c = self._openai_choice(name, value, dict(choice))
                changed = changed or c
            choices.append(choice)
        value["choices"] = choices
        return value, changed

    def _openai_choice(self, name: str, value: dict, choice: dict) -> tuple[dict, bool]:
        index = choice.get("index", 0)
        finished = bool(choice.get("finish_reason"))
        changed = False
        if not isinstance(choice.get("delta"), dict):
            if isinstance(choice.get("text"), str):                       # legacy completions
                key = ("choice", index)
                out = self._stream(key, choice["text"], (name, value, ("choices", index, "text")))
                if finished:
                    out = _Out(out + self._end(key))
                changed = out != choice["text"]
                choice["text"] = out
            return choice, changed
        delta = dict(choice["delta"])
        for field in _OPENAI_TEXT:
            key = ("choice", index, field)
            if isinstance(delta.get(field), str):
                out = self._stream(key, delta[field], (name, value, ("delta", field)))
                changed = changed or out != delta[field]
                delta[field] = out
            tail = self._end(key) if finished else ""
            if tail:
                delta[field] = _Out((delta.get(field) or "") + tail)
                changed = True
        if isinstance(delta.get("tool_calls"), list) or finished:
            calls, c = self._openai_tool_calls(name, value, index, delta.get("tool_calls") or [], finished)
            if c:
                delta["tool_calls"] = calls
                changed = True
        choice["delta"] = delta
        return choice, changed

    def _openai_tool_calls(self, name: str, value: dict, index: int, calls: list, finished: bool):
        """Tool-call arguments stream as JSON text: masked across chunks like content."""
        changed = False
        out_calls = []
        for call in calls:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                key = ("choice", index, "tool", call.get("index", 0))
                out = self._stream(key, fn["arguments"], (name, value, ("tool", call.get("index", 0))))
                if out != fn["arguments"]:
                    call = dict(call, function=dict(fn, arguments=out))
                    changed = True
            out_calls.append(call)
        if finished:
            for key in [k for k in self.deltas if k[:3] == ("choice", index, "tool")]:
                tail = self._end(key)
                if tail:
                    out_calls.append({"index": key[3], "function": {"arguments": _Out(tail)}})
                    changed = True
        return out_calls, changed

    def _anthropic_delta(self, name: str, value: dict):
        delta = value.get("delta")
        if not isinstance(delta, dict):
            return value, False
        for key in ("text", "thinking", "partial_json"):
            if isinstance(delta.get(key), str):
                out = self._stream(("block", value.get("index")), delta[key], (name, value, ("delta", key)))
                if out == delta[key]:
                    return value, False
                value = dict(value, delta=dict(delta, **{key: out}))
                return value, True
        return value, False

    def _responses_delta(self, name: str, value: dict):
        text = value.get("delta")
        if not isinstance(text, str):
            return value, False
        key = ("item", value.get("item_id"), value.get("content_index", 0))
        out = self._stream(key, text, (name, value, ("delta",)))
        return (value, False) if out == text else (dict(value, delta=out), True)

    # -- delta streams ----------------------------------------------------------------------

    def _stream(self, key: tuple, text: str, template) -> _Out:
        delta = self.deltas.get(key)
        if delta is None:
            delta = self.deltas[key] = _Delta(self.mask_text, template)
        delta.template = template
        out = delta.masker.feed(text)
        if out:
            delta.text.append(out)
        return _Out(out)

    def _end(self, key: tuple) -> str:
        delta = self.deltas.get(key)
        if delta is None:
            return ""
        out = delta.masker.end()
        if out:
            delta.text.append(out)
        return out

    def _flush(self, key: tuple) -> bytes:
        """The held text of one stream as an event of its own, shaped like its last delta."""
        delta = self.deltas.get(key)
        if delta is None or not delta.masker.pending:
            return b""
        text = self._end(key)
        name, last, path = delta.template
        value = copy.deepcopy(last)
        if path[0] == "choices":                     # legacy completions: choices[i].text
            value["choices"] = [dict(c, text=_Out(text), finish_reason=None) for c in value["choices"]
                                if isinstance(c, dict) and c.get("index", 0) == path[1]]
        elif "choices" in value:
            index = key[1]
            delta = ({"tool_calls": [{"index": path[1], "function": {"arguments": _Out(text)}}]}
                     if path[0] == "tool" else {path[1]: _Out(text)})
            value["choices"] = [{"index": index, "delta": delta, "finish_reason": None}]
            value.pop("usage", None)
        else:
            target = value
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = _Out(text)
        value, _ = map_strings(value, self._mask_rest)
        return encode_event(_dumps(value), None if name == "message" else name)

    def _flush_all(self) -> bytes:
        return b"".join(self._flush(key) for key in list(self.deltas))
