"""Walking JSON bodies: every string (for judging), every string rewritten (for masking), and
the few fields of LLM APIs wireproxy reads (model, token usage)."""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator

# Images, audio and files inline as base64 (a data: URL or a bare run): not text to judge or
# mask, and masking a match inside one would corrupt it.
_BLOB = re.compile(r"(?:data:[\w/+.-]+;base64,)?[A-Za-z0-9+/=_-]{1024,}")


def is_blob(text: str) -> bool:
    return len(text) >= 1024 and _BLOB.fullmatch(text) is not None


def strings(value: Any) -> Iterator[str]:
    """Every string value (not keys), depth first."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not is_blob(v):
                yield v
        elif isinstance(v, dict):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list):
            stack.extend(reversed(v))


def text_of(value: Any) -> str:
    return "\n".join(strings(value))


def map_strings(value: Any, fn: Callable[[str], str]) -> tuple[Any, bool]:
    """A copy with `fn` applied to every string value, and whether anything changed. Unchanged
    subtrees are the same objects (nothing is copied when nothing changes)."""
    if isinstance(value, str):
        if is_blob(value):
            return value, False
        out = fn(value)
        return out, out != value
    if isinstance(value, dict):
        new = None
        for key, item in value.items():
            if isinstance(item, str):
                if len(item) >= 1024 and is_blob(item):
                    continue
                out = fn(item)
                if out == item:
                    continue
            elif isinstance(item, (dict, list)):
                out, changed = map_strings(item, fn)
                if not changed:
                    continue
            else:
                continue
            if new is None:
                new = dict(value)
            new[key] = out
        return (value, False) if new is None else (new, True)
    if isinstance(value, list):
        items = None
        for i, item in enumerate(value):
            out, changed = map_strings(item, fn) if isinstance(item, (str, dict, list)) else (item, False)
            if changed:
                if items is None:
                    items = list(value)
                items[i] = out
        return (value, False) if items is None else (items, True)
    return value, False


def model_of(body: Any) -> str | None:
    if isinstance(body, dict):
        model = body.get("model")
        if isinstance(model, str):
            return model
    return None


def usage_tokens(obj: Any) -> int | None:
    """Tokens an answer says it used: OpenAI chat/completions `usage.total_tokens`, Responses
    and Anthropic `input_tokens` + `output_tokens` (Anthropic streams put them in
    message_start.message.usage and message_delta.usage)."""
    if not isinstance(obj, dict):
        return None
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        for key in ("message", "response"):
            inner = obj.get(key)
            if isinstance(inner, dict) and isinstance(inner.get("usage"), dict):
                usage = inner["usage"]
                break
        else:
            return None
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = [usage.get(k) for k in ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens")]
    numbers = [p for p in parts if isinstance(p, int)]
    return sum(numbers) if numbers else None
