"""What happens to a response body on its way to the client: a filter per content type.

    body_filter = make_filter(content_type, mask_text, mcp=inspector)   # None: bytes pass as they are
    out = body_filter.feed(chunk); ...; out = body_filter.end()
    body_filter.recorded()        # what the session log gets: masked body or reassembled stream

JSON bodies are small and must be whole to be parsed: they are buffered (up to a cap), every
string masked (or, for MCP, each JSON-RPC message filtered by the inspector) and re-encoded
only if something changed. SSE streams go event by event (ssemask.py). Other text is masked as
a stream of text. Bodies of other types (images, audio, archives) pass untouched.
"""

from __future__ import annotations

import codecs
import json
from typing import Any, Callable

from .errors import HttpError
from .jsonwalk import map_strings, usage_tokens
from .ssemask import SseMasker
from .streammask import StreamTextMasker

MAX_JSON_BODY = 64 * 1024 * 1024
RECORD_CHARS = 65536


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def content_kind(content_type: str | None) -> str:
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct == "text/event-stream":
        return "sse"
    if ct == "application/json" or ct.endswith("+json"):
        return "json"
    if ct.startswith("text/") or ct in ("application/xml", "application/x-ndjson", "application/javascript"):
        return "text"
    return "binary"


class JsonFilter:
    def __init__(self, mask_text, mcp=None, record_chars: int = RECORD_CHARS):
        self.mask_text = mask_text
        self.mcp = mcp
        self.record_chars = record_chars
        self.buf = bytearray()
        self.tokens: int | None = None
        self._recorded: Any = None

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        if len(self.buf) > MAX_JSON_BODY:
            raise HttpError(502, f"upstream JSON body over {MAX_JSON_BODY} bytes cannot be inspected")
        return b""

    def end(self) -> bytes:
        raw = bytes(self.buf)
        try:
            value = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            text = raw.decode("utf-8", "replace")
            masked = self.mask_text(text) if self.mask_text else text
            self._recorded = _clip(masked, self.record_chars)
            return raw if masked == text else masked.encode("utf-8")
        self.tokens = usage_tokens(value)
        if self.mcp is not None:
            new = self.mcp.server_batch(value)
            changed = new != value
        elif self.mask_text is not None:
            new, changed = map_strings(value, self.mask_text)
        else:
            new, changed = value, False
        self._recorded = new
        return json.dumps(new, ensure_ascii=False).encode("utf-8") if changed else raw

    def recorded(self) -> dict:
        text = json.dumps(self._recorded, ensure_ascii=False) if self._recorded is not None else ""
        if len(text) > self.record_chars:
            return {"response": _clip(text, self.record_chars)}
        return {"response": self._recorded}


class SseFilter:
    def __init__(self, mask_text, mcp=None, record_chars: int = RECORD_CHARS):
        on_json = mcp.server_batch if mcp is not None else None
        self.sse = SseMasker(mask_text, on_json=on_json)
        self.record_chars = record_chars
        self.mcp_messages: list = []
        if mcp is not None:
            def on_json_recorded(value):
                out = mcp.server_batch(value)
                if len(self.mcp_messages) < 100:
                    self.mcp_messages.append(out)
                return out
            self.sse.on_json = on_json_recorded

    @property
    def tokens(self) -> int | None:
        return self.sse.tokens

    def feed(self, data: bytes) -> bytes:
        return self.sse.feed(data)

    def end(self) -> bytes:
        return self.sse.end()

    def recorded(self) -> dict:
        out: dict = {"stream_events": self.sse.events}
        transcript = self.sse.transcript()
        if transcript:
            out["response_text"] = {k: _clip(v, self.record_chars) for k, v in transcript.items()}
        if self.mcp_messages:
            out["response"] = self.mcp_messages
        return out


class TextFilter:
    def __init__(self, mask_text, record_chars: int = RECORD_CHARS):
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.masker = StreamTextMasker(mask_text)
        self.record_chars = record_chars
        self.sent: list[str] = []
        self.size = 0
        self.tokens = None

    def _keep(self, text: str) -> bytes:
        if self.size < self.record_chars:
            self.sent.append(text)
            self.size += len(text)
        return text.encode("utf-8")

    def feed(self, data: bytes) -> bytes:
        return self._keep(self.masker.feed(self.decoder.decode(data)))

    def end(self) -> bytes:
        return self._keep(self.masker.feed(self.decoder.decode(b"", final=True)) + self.masker.end())

    def recorded(self) -> dict:
        return {"response": _clip("".join(self.sent), self.record_chars)}


def make_filter(content_type: str | None, mask_text: Callable[[str], str] | None, *, mcp=None,
                record: bool = False, record_chars: int = RECORD_CHARS):
    """The filter for a body, or None when it may pass as bytes (nothing to mask or record)."""
    kind = content_kind(content_type)
    if mask_text is None and mcp is None:
        if not record or kind == "binary":
            return None
        mask_text = _same
    if kind == "sse":
        return SseFilter(mask_text, mcp, record_chars)
    if kind == "json":
        return JsonFilter(mask_text, mcp, record_chars)
    if kind == "text" and mask_text is not None:
        return TextFilter(mask_text, record_chars)
    return None


def _same(text: str) -> str:
    return text
