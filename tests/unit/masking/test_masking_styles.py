"""Styles: the documented output forms, and a hash that is deterministic and keyed."""

from __future__ import annotations

import pytest

from wireproxy.masking import HASH_HEX_CHARS, REDACTED, Hasher, MaskConfigError, Style
from wireproxy.masking.styles import looks_like_email, partial


def test_redact_is_fixed_whatever_the_value() -> None:
    style = Style("redact")
    for value in ("", "x", "4111111111111111", "a@b.com", "ü" * 100):
        assert style.text(value) == REDACTED == "****"
    assert style.raw(b"anything") == b"****"
    assert style.raw(b'{"a": 1}', json_value=True) == b'"****"'


@pytest.mark.parametrize(("value", "keep", "out"), [
    ("4111111111111111", 4, "****1111"),
    ("4111 1111 1111 1111", 4, "****1111"),
    ("123-45-6789", 4, "****6789"),
    ("12345678", 4, "****5678"),            # exactly 2 * keep_last: last 4 shown
    ("1234567", 4, "****"),                 # shorter: nothing shown
    ("abc", 4, "****"),
    ("", 4, "****"),
    ("4111111111111111", 2, "****11"),
    ("4111111111111111", 0, "****"),
    ("john.doe@example.com", 4, "****@example.com"),
    ("JOHN@Example.ORG", 0, "****@Example.ORG"),
    ("Grüße aus Köln", 4, "****Köln"),
])
def test_partial(value: str, keep: int, out: str) -> None:
    assert partial(value, keep) == out
    assert Style("partial", keep).text(value) == out
    assert Style("partial", keep).raw(value.encode()) == out.encode()


def test_partial_json_keeps_a_json_string() -> None:
    style = Style("partial")
    assert style.raw(b'"john@example.com"', json_value=True) == b'"****@example.com"'
    assert style.raw(b'{"card": "4111111111111111"}', json_value=True) == b'"****11\\"}"'


def test_looks_like_email() -> None:
    assert looks_like_email("a@b.co")
    for value in ("a@b", "@b.com", "a b@c.com", "a@@b.com", "plain"):
        assert not looks_like_email(value), value


def test_hash_is_deterministic_keyed_and_short() -> None:
    a1, a2, b = Hasher(b"k" * 32), Hasher(b"k" * 32), Hasher(b"other key")
    value = "john@example.com"
    h = a1.text(value)
    assert len(h) == HASH_HEX_CHARS == 16 and all(c in "0123456789abcdef" for c in h)
    assert a2.text(value) == h                     # same key, another instance: same output
    assert a1.text(value) == h                     # cached path gives the same
    assert b.text(value) != h                      # another key: another output
    assert a1.text(value + " ") != h
    assert a1.hex(value.encode()) == h             # text and raw bytes agree
    style = Style("hash", hasher=a1)
    assert style.text(value) == h
    assert style.raw(value.encode()) == h.encode()
    assert style.raw(b'"x"', json_value=True) == b'"' + a1.hex(b'"x"').encode() + b'"'


def test_hash_does_not_use_the_key_directly() -> None:
    import hashlib
    import hmac
    key = b"k" * 32
    direct = hmac.new(key, b"v", hashlib.sha256).hexdigest()[:16]
    assert Hasher(key).text("v") != direct


def test_hash_cache_is_bounded() -> None:
    hasher = Hasher(b"key")
    outs = {hasher.text(str(i)) for i in range(20000)}
    assert len(outs) == 20000
    assert len(hasher._cache) <= 8192


def test_null_style() -> None:
    style = Style("null")
    assert style.text("x") is None and style.raw(b"x") is None
    assert style.text_or_redact("x") == REDACTED


def test_bad_styles() -> None:
    with pytest.raises(MaskConfigError):
        Style("scramble")
    with pytest.raises(MaskConfigError):
        Style("partial", -1)
    with pytest.raises(MaskConfigError):
        Style("hash")                              # no key material
    with pytest.raises(MaskConfigError):
        Hasher(b"")


def test_rank_orders_restrictiveness() -> None:
    hasher = Hasher(b"k")
    ranks = [Style(n, hasher=hasher).rank for n in ("partial", "hash", "redact", "null")]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4
