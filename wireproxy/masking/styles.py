"""Masking styles: what a masked value becomes.

One family of outputs, the same for a whole column and for a value found inside text:

redact   `****`: four asterisks whatever the value and its length (the length is not leaked).
partial  an email keeps its domain: `****@example.com`; anything else keeps its last
         `keep_last` characters: `****1111`. A value shorter than `2 * keep_last` characters is
         fully redacted (`****`), so partial never shows more than half of a value;
         `keep_last = 0` shows nothing but an email's domain.
hash     16 lower-case hex characters (64 bits) of HMAC-SHA256 over the value's UTF-8 bytes,
         keyed by a subkey derived from the caller's key material. Deterministic for one key
         across sessions, columns, tables and wire formats, so joins, DISTINCT and GROUP BY on the
         masked value still work; unlinkable without the key.
null     SQL NULL. Where NULL cannot be expressed (inside a longer text, an error message, a
         notification payload) a null-style hit is written as `****`.

Where the value is JSON (json/jsonb columns masked whole) the output is the JSON string of the
above (`"****"`), so the column still parses as JSON; hash is then over the JSON text, and partial
over the JSON string's content when the value is a JSON string.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from .errors import MaskConfigError
from .spec import STYLES

REDACTED = "****"
REDACTED_BYTES = REDACTED.encode()
HASH_HEX_CHARS = 16
_HASH_CONTEXT = b"wireproxy masking hash v1"
_HASH_CACHE_MAX = 8192


def looks_like_email(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return (bool(at) and bool(local) and "@" not in local and "." in domain.strip(".")
            and value.split() == [value])


def redact(value: str) -> str:
    return REDACTED


def partial(value: str, keep_last: int = 4) -> str:
    if looks_like_email(value):
        return REDACTED + "@" + value.rpartition("@")[2]
    if keep_last <= 0 or len(value) < 2 * keep_last:
        return REDACTED
    return REDACTED + value[-keep_last:]


class Hasher:
    """Keyed, deterministic, short: HMAC-SHA256(subkey, value) as 16 hex characters.

    The subkey is HMAC(key, "wireproxy masking hash v1"), so the proxy's key material is never
    used directly and masked values cannot be linked to anything else the key produces.
    A small cache holds recent results (GROUP BY columns repeat).
    """

    __slots__ = ("_key", "_cache")

    def __init__(self, key: bytes) -> None:
        if not key:
            raise MaskConfigError("hash style needs key material")
        self._key = hmac.new(bytes(key), _HASH_CONTEXT, hashlib.sha256).digest()
        self._cache: dict[bytes, str] = {}

    def hex(self, data: bytes) -> str:
        out = self._cache.get(data)
        if out is None:
            out = hmac.new(self._key, data, hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]
            if len(self._cache) >= _HASH_CACHE_MAX:
                self._cache.clear()
            self._cache[data] = out
        return out

    def text(self, value: str) -> str:
        return self.hex(value.encode("utf-8", "surrogateescape"))


class Style:
    """One style with its parameters, applied to text (`text`) or to raw value bytes (`raw`).

    `text` and `raw` return None for the null style; everything else returns the masked value.
    `json=True` wraps the result as a JSON string (json/jsonb columns masked whole).
    """

    __slots__ = ("name", "keep_last", "hasher", "_const")

    def __init__(self, name: str, keep_last: int = 4, hasher: Hasher | None = None) -> None:
        if name not in STYLES:
            raise MaskConfigError(f"unknown style {name!r} (one of {', '.join(STYLES)})")
        if keep_last < 0:
            raise MaskConfigError("keep_last must be >= 0")
        if name == "hash" and hasher is None:
            raise MaskConfigError("hash style needs key material")
        self.name = name
        self.keep_last = keep_last
        self.hasher = hasher
        self._const = REDACTED if name == "redact" else None

    # restrictiveness, for choosing among several rules on one column
    @property
    def rank(self) -> int:
        return {"null": 3, "redact": 2, "hash": 1, "partial": 0}[self.name]

    def text(self, value: str) -> str | None:
        name = self.name
        if name == "redact":
            return REDACTED
        if name == "partial":
            return partial(value, self.keep_last)
        if name == "hash" and self.hasher is not None:
            return self.hasher.text(value)
        return None

    def text_or_redact(self, value: str) -> str:
        """For places without NULL: the null style becomes `****`."""
        out = self.text(value)
        return REDACTED if out is None else out

    def raw(self, data: bytes, *, json_value: bool = False) -> bytes | None:
        """Mask a whole value given as UTF-8 bytes; JSON-string output when `json_value`."""
        name = self.name
        if name == "null":
            return None
        if self._const is not None:
            return b'"****"' if json_value else REDACTED_BYTES
        if name == "hash" and self.hasher is not None:
            h = self.hasher.hex(data).encode()
            return b'"' + h + b'"' if json_value else h
        text = data.decode("utf-8", "surrogateescape")
        if json_value:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            source = parsed if isinstance(parsed, str) else text
            return json.dumps(partial(source, self.keep_last), ensure_ascii=False).encode(
                "utf-8", "surrogateescape")
        return partial(text, self.keep_last).encode("utf-8", "surrogateescape")

    def __repr__(self) -> str:
        return f"Style({self.name!r}, keep_last={self.keep_last})"
