"""The streaming text masker: however an answer is split into chunks, what comes out is what
masking the whole answer gives, and a match is never cut in two."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wireproxy.http.streammask import StreamTextMasker, held_tail_start
from wireproxy.masking import Masker, MaskSpec

MASK = Masker([MaskSpec(id="m", detectors=("credit_card", "email", "us_ssn", "iban", "phone", "private_key"),
                        style="partial")]).for_user("")
TEXTS = [
    "Sure. Card 4111 1111 1111 1111, expiry 12/30. Mail alice@example.com or call +1 415 555 2671.",
    "SSN 123-45-6789 and IBAN DE89 3704 0044 0532 0130 00 belong to Bob (bob.smith@corp.example.org).",
    "Key:\n-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\nbye",
    "nothing sensitive here at all, just words and 12 numbers 345",
    "123-45-6789 6789 4111 1111 ",     # an SSN whose last group starts a card (the fuzzer's find)
    '{"to": "bob@example.org", "card": "4111 1111 1111 1111", "tel": "(415) 555-2671"}',  # tool-call JSON
]


def _stream(text: str, cuts: list[int]) -> str:
    masker = StreamTextMasker(MASK.mask_text)
    cuts = sorted(set(c % (len(text) + 1) for c in cuts))
    out = [masker.feed(text[a:b]) for a, b in zip([0, *cuts], [*cuts, len(text)])]
    return "".join(out) + masker.end()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TEXTS), st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_any_split_masks_like_the_whole(text, cuts):
    assert _stream(text, cuts) == MASK.mask_text(text)


def test_char_by_char_never_leaks_the_card():
    masker = StreamTextMasker(MASK.mask_text)
    sent = [masker.feed(ch) for ch in TEXTS[0]] + [masker.end()]
    assert "4111" not in "".join(sent) and "alice" not in "".join(sent)
    assert "".join(sent) == MASK.mask_text(TEXTS[0])


def test_text_is_released_as_it_comes_not_held_to_the_end():
    masker = StreamTextMasker(MASK.mask_text)
    assert masker.feed("hello there ") == "hello there "
    assert masker.feed("my card is 4111") == "my card is "
    assert masker.pending == len("4111")


def test_held_tail_covers_spaced_groups_and_open_pem():
    assert held_tail_start("pay 4111 1111 ") == len("pay ")
    assert held_tail_start("iban DE89 3704") == len("iban ")
    assert held_tail_start("see -----BEGIN PRIVATE KEY-----\nMIIB") == len("see ")
    assert held_tail_start("plain words") == len("plain ")


def test_hold_is_bounded():
    masker = StreamTextMasker(MASK.mask_text, max_hold=64)
    out = masker.feed("x" * 1000)
    assert len(out) == 1000 - 64 and masker.pending == 64
