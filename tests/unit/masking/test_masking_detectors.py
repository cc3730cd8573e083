"""Detectors: what each one finds, in which formats, and what it must leave alone."""

from __future__ import annotations

import pytest

from wireproxy.masking import DETECTOR_NAMES, CustomDetector, Detectors, MaskConfigError, find
from wireproxy.masking.validators import card_issuer_ok, iban_ok, luhn_ok


def only(name: str, text: str) -> list[str]:
    """The values detector `name` finds in `text`."""
    return [text[s:e] for s, e, _ in find(text, (name,))]


def found_whole(name: str, value: str) -> None:
    for text in (value, f"x {value} y", f"({value}).", f"value: {value}\n"):
        assert only(name, text) == [value], (name, text)


# -- credit_card ------------------------------------------------------------------------------

CARDS = [
    "4111111111111111", "4012888888881881", "4222222222222",             # Visa 16, 16, 13
    "5555555555554444", "5105105105105100", "2223003122003222",         # Mastercard
    "378282246310005", "371449635398431",                               # Amex 15
    "6011111111111117", "6011000990139424",                             # Discover
    "30569309025904", "38520000023237",                                 # Diners 14
    "3530111333300000", "3566002020360505",                             # JCB
    "6200000000000005", "6759649826438453",                             # UnionPay, Maestro
    "4111 1111 1111 1111", "4111-1111-1111-1111", "3782 822463 10005",  # grouped
    "5555 5555 5555 4444", "4222 2222 2222 2",
]


@pytest.mark.parametrize("card", CARDS)
def test_credit_card_found(card: str) -> None:
    found_whole("credit_card", card)


@pytest.mark.parametrize("text", [
    "4111111111111112",                       # Luhn fails
    "1234567890123456",                       # no issuer starts with 1
    "0000000000000000",                       # all one digit (Luhn-valid)
    "order 4111111111111111",                 # deny list: an order number is not a card
    "Order No. 4111111111111111",
    "invoice #4111111111111111",
    "tracking number 4111 1111 1111 1111",
    "4111111111111111234",                    # 19 digits, Luhn fails as a whole
    "41111111111111111111111",                # a longer digit run holds no card
    "x4111111111111111", "4111111111111111y", # glued to a word
    "0.4111111111111111", "4111111111111111.25",   # decimals
    "4111 1111-1111 1111",                    # mixed separators
    "41 11 11 11 11 11 11 11",                # first group must have 4 digits
    "2024-01-15 10:23:45.123456+00",          # timestamps
    "20240115102345",                         # digit-only timestamp
    "+1 415 555 2671",
    "378282246310005 0",                      # Amex must be 15 exactly: ok alone...
])
def test_credit_card_negatives(text: str) -> None:
    if text == "378282246310005 0":
        assert only("credit_card", text) == ["378282246310005"]
        return
    assert only("credit_card", text) == []


def test_credit_card_context_allow_word_beats_deny() -> None:
    assert only("credit_card", "order paid by card 4111111111111111") == ["4111111111111111"]


def test_credit_card_followed_by_expiry_and_several_cards() -> None:
    text = "cc 4111 1111 1111 1111 12/25, and 5555 5555 5555 4444 5105105105105100"
    assert only("credit_card", text) == [
        "4111 1111 1111 1111", "5555 5555 5555 4444", "5105105105105100"]


def test_luhn_and_issuer() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert card_issuer_ok("4111111111111111") and not card_issuer_ok("411111111111111")
    assert card_issuer_ok("378282246310005") and not card_issuer_ok("3782822463100050")


# -- email --------------------------------------------------------------------------------------

@pytest.mark.parametrize("email", [
    "john@example.com", "john.doe+tag@mail.example.co.uk", "j_d-1%x@sub-domain.example.museum",
    "UPPER@EXAMPLE.ORG", "a@b.io",
])
def test_email_found(email: str) -> None:
    found_whole("email", email)


@pytest.mark.parametrize("text", [
    "logo@2x.png", "icon@3x.svg", "user@localhost", "pkg@1.2.3", "@scope/pkg",
    "john..doe@example.com", "john.@example.com", "x@-bad.com", "x@bad-.com",
    "a @ b.com", "name at example dot com",
])
def test_email_negatives(text: str) -> None:
    assert only("email", text) == []


def test_email_in_mailto_and_key_detail() -> None:
    assert only("email", "mailto:bob@example.com") == ["bob@example.com"]
    assert only("email", "Key (email)=(bob@example.com) already exists.") == ["bob@example.com"]


# -- phone --------------------------------------------------------------------------------------

@pytest.mark.parametrize("phone", [
    "+14155552671", "+1 415 555 2671", "+1 (415) 555-2671", "+1-415-555-2671",
    "+44 20 7946 0958", "+44 (0)20 7946 0958", "+33 1 23 45 67 89", "+49 30 12345678",
    "+81 3-1234-5678", "(415) 555-2671", "415-555-2671", "415.555.2671", "1 415 555 2671",
    "020 7946 0958", "07700 900123", "01 23 45 67 89", "06 12 34 56 78", "030-1234567",
])
def test_phone_found(phone: str) -> None:
    found_whole("phone", phone)


@pytest.mark.parametrize("text", [
    "4155552671",                          # bare digits: not a phone without "+" or separators
    "123-456-7890",                        # NANP area code cannot start with 1
    "415-155-2671",                        # nor the exchange
    "2024-01-15", "15.01.2024", "2024-01-15 10:23:45", "+1 2024-01-15",
    "+12345",                              # too short for E.164
    "+1 415 555 26",                       # NANP needs 10 digits
    "v1.2.3", "10.0.0.1", "ISBN 978-0-306-40615-7", "1234.5678",
    "DE00 3704 0044 0532 0130 00",         # digit groups inside an IBAN-like run
    "12345-6789",                          # ZIP+4
])
def test_phone_negatives(text: str) -> None:
    assert only("phone", text) == []


def test_phone_followed_by_more_digits_is_trimmed() -> None:
    assert only("phone", "+1 415 555 2671 2024") == ["+1 415 555 2671"]


# -- us_ssn -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ssn", ["123-45-6789", "078-05-1121", "665-12-3456", "899 99 9999"])
def test_ssn_found(ssn: str) -> None:
    found_whole("us_ssn", ssn)


@pytest.mark.parametrize("text", [
    "000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456",   # invalid areas
    "123-00-4567", "123-45-0000",                                 # group 00, serial 0000
    "078-05-1120",                                                # the Woolworth wallet card
    "123456789",                                                  # bare: not treated as SSN
    "123-45 6789", "1123-45-6789", "123-45-67890", "123-45-6789-1",
    "2024-01-15",
])
def test_ssn_negatives(text: str) -> None:
    assert only("us_ssn", text) == []


# -- iban ---------------------------------------------------------------------------------------

IBANS = [
    "DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
    "NL91ABNA0417164300", "BE68539007547034", "CH9300762011623852957", "NO9386011117947",
    "ES9121000418450200051332", "IT60X0542811101000000123456",
    "DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "BE68 5390 0754 7034",
]


@pytest.mark.parametrize("iban", IBANS)
def test_iban_found(iban: str) -> None:
    found_whole("iban", iban)


@pytest.mark.parametrize("text", [
    "DE89370400440532013001",            # mod-97 fails
    "DE8937040044053201300",             # wrong length for DE
    "XX89370400440532013000",            # no such country
    "de89370400440532013000",            # lower case
    "DE89 3704 0044 0532 0130 01",
    "ABCD1234EFGH5678",
])
def test_iban_negatives(text: str) -> None:
    assert only("iban", text) == []


def test_iban_followed_by_an_upper_case_word() -> None:
    assert only("iban", "BE68 5390 0754 7034 DATA") == ["BE68 5390 0754 7034"]
    assert iban_ok("GB82WEST12345698765432")


# -- ipv4 / ipv6 --------------------------------------------------------------------------------

@pytest.mark.parametrize("ip", ["192.168.1.1", "10.0.0.255", "8.8.8.8", "255.255.255.255",
                                "0.0.0.0"])
def test_ipv4_found(ip: str) -> None:
    found_whole("ipv4", ip)
    assert only("ipv4", f"{ip}:5432") == [ip]
    assert only("ipv4", f"{ip}/24") == [ip]


@pytest.mark.parametrize("text", [
    "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.02.03.04", "192.168.001.001", "v1.2.3.4",
    "version 10.4.12", "15.01.2024", "3.14159",
])
def test_ipv4_negatives(text: str) -> None:
    assert only("ipv4", text) == []


@pytest.mark.parametrize("ip", ["2001:db8::8a2e:370:7334", "fe80::1", "::1",
                                "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "::ffff:192.0.2.128",
                                "FE80::ABCD"])
def test_ipv6_found(ip: str) -> None:
    found_whole("ipv6", ip)


@pytest.mark.parametrize("text", [
    "12:30:45", "10:23:45.123", "00:1a:2b:3c:4d:5e", "std::vector", "a::b::c", "::",
    "1:2:3:4:5:6:7:8:9", "2001:db8::g1",
])
def test_ipv6_negatives(text: str) -> None:
    assert only("ipv6", text) == []


# -- jwt / aws / private key / api keys ---------------------------------------------------------

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4g"
       "RG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")


def test_jwt_found() -> None:
    found_whole("jwt", JWT)
    unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
    assert only("jwt", f"token={unsigned} ok") == [unsigned]
    assert only("jwt", f"Authorization: Bearer {JWT}") == [JWT]


@pytest.mark.parametrize("text", [
    "eyJub3RhbGciOjF9.eyJzdWIiOiJ4In0.abc",      # header without "alg"
    "eyJ!!!.abc.def", "eyJhbGciOiJIUzI1NiJ9", "xeyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.sig",
])
def test_jwt_negatives(text: str) -> None:
    assert only("jwt", text) == []


def test_aws_access_key() -> None:
    found_whole("aws_access_key", "AKIAIOSFODNN7EXAMPLE")
    found_whole("aws_access_key", "ASIAY34FZKBOKMUTVV7A")
    for text in ("AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPLEX", "akiaiosfodnn7example",
                 "XAKIAIOSFODNN7EXAMPLE", "AKIDIOSFODNN7EXAMPLE"):
        assert only("aws_access_key", text) == [], text


PEM = ("-----BEGIN RSA PRIVATE KEY-----\n"
       "MIIEpAIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aozN3tihPmljnnudb9G3HE\n"
       "Y9F1xPRYhAwuq8YFmQ==\n-----END RSA PRIVATE KEY-----")


def test_private_key_blocks() -> None:
    found_whole("private_key", PEM)
    for label in ("", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA "):
        block = f"-----BEGIN {label}PRIVATE KEY-----\nAAAA\n-----END {label}PRIVATE KEY-----"
        assert only("private_key", f"key: {block} end") == [block]
    pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----"
    assert only("private_key", pgp) == [pgp]
    # JSON-escaped, as in a json column or an HTTP body
    escaped = PEM.replace("\n", "\\n")
    assert only("private_key", f'{{"key": "{escaped}"}}') == [escaped]


def test_private_key_without_end_takes_the_base64_run() -> None:
    text = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7"
    assert only("private_key", text + "\" more") == [text]


def test_public_key_and_certificate_are_not_private() -> None:
    for text in ("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
                 "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"):
        assert only("private_key", text) == []


API_KEYS = [
    "sk-" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ",       # OpenAI legacy
    "sk-proj-" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3-_AbCdEf",  # OpenAI project
    "sk-ant-api03-" + "Xy1" * 30 + "AA",                           # Anthropic
    "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",                  # GitHub classic
    "gho_" + "16C7e42F292c6912E7710c838347Ae178B4a",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW",
    "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "xoxp-1234567890-1234567890-1234567890123-0123456789abcdef0123456789abcdef",
    "xapp-1-A0123456789-1234567890123-0123456789abcdef",
    "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "pk_live_" + "TYooMQauvdEDq54NiTphI7jx",
    "rk_test_" + "51H8abcDEF123ghiJKL456mn",
    "glpat-" + "xxxxXXXX1234yyyyZZZZ",
    "SG." + "ngeVfQFYQlKU0ufo8x5d1A" + "." + "TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr",
    "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz12345678",
    "shpat_" + "0123456789abcdef0123456789abcdef",
    "SK" + "0123456789abcdef0123456789abcdef",
    "dop_v1_" + "0123456789abcdef" * 4,
    "ya29." + "a0AfH6SMBx-abcdefghijklmnop",
    "xai-" + "Ab1" * 14,
    "pypi-AgEIcHlwaS5vcmc" + "Ab1_-" * 12,
]


@pytest.mark.parametrize("key", API_KEYS)
def test_api_key_found(key: str) -> None:
    found_whole("api_key", key)
    assert only("api_key", f'{{"api_key": "{key}"}}') == [key]
    assert only("api_key", f"export OPENAI_API_KEY={key}") == [key]


@pytest.mark.parametrize("text", [
    "sk-this-is-a-long-lowercase-slug-text",     # no digit / upper: prose, not a key
    "task-12345678901234567890ABC",              # "sk-" inside a word
    "ghp_short", "AIzaTooShort", "glpat-short", "xoxb-nodigitsatall",
    "risk_live_AbCdEf0123456789xx", "SKU0123456789abcdef0123456789abcdef",
    "user_id_1234567890", "my-service-name-v2",
])
def test_api_key_negatives(text: str) -> None:
    assert only("api_key", text) == []


# -- the set ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "order_id", "getUserById", "user_id_12345", "a1b2c3d4e5f6", "v2.3.1", "1.0.0-beta.1",
    "550e8400-e29b-41d4-a716-446655440000", "2024-01-15", "2024-01-15T10:23:45.123Z",
    "15/01/2024", "12:30:45", "3.14159", "-42", "1e10", "0x7fffffff", "#ff00aa",
    "SELECT * FROM users WHERE id = 42", "https://example.com/path?q=1", "C:\\Windows\\System32",
    "The quick brown fox jumps over the lazy dog.",
])
def test_ordinary_values_hold_nothing(text: str) -> None:
    assert find(text) == []


def test_hits_are_disjoint_sorted_and_longest_wins() -> None:
    text = f"mail a@b.com, card 4111111111111111, jwt {JWT}, ip 10.0.0.1"
    hits = find(text)
    assert [h[2] for h in hits] == ["email", "credit_card", "jwt", "ipv4"]
    for (s1, e1, _), (s2, _e2, _) in zip(hits, hits[1:]):
        assert e1 <= s2 and s1 < e1
    # a PEM block containing things that look like other values is one hit
    pem = "-----BEGIN PRIVATE KEY-----\nAKIAIOSFODNN7EXAMPLE\n-----END PRIVATE KEY-----"
    assert [h[2] for h in find(pem)] == ["private_key"]


def test_gate_is_necessary_for_the_samples() -> None:
    dets = Detectors(DETECTOR_NAMES)
    samples = {"credit_card": CARDS, "iban": IBANS, "api_key": API_KEYS, "jwt": [JWT],
               "private_key": [PEM], "email": ["a@b.io"], "ipv6": ["::1"], "ipv4": ["8.8.8.8"],
               "phone": ["+14155552671"], "us_ssn": ["123-45-6789"],
               "aws_access_key": ["AKIAIOSFODNN7EXAMPLE"]}
    for name, values in samples.items():
        for v in values:
            assert name in dets.gate(v.encode()), (name, v)
            assert dets.could_match(v.encode())
    assert dets.gate(b"hello world") == []


def test_custom_detectors() -> None:
    custom = [CustomDetector("order_ref", r"ORD-[0-9]{8}")]
    dets = Detectors(["order_ref", "email"], custom)
    assert dets.always_scans
    assert dets.find("see ORD-12345678 and a@b.io") == [(4, 16, "order_ref"), (21, 27, "email")]
    with pytest.raises(MaskConfigError):
        Detectors(["nope"])
    with pytest.raises(MaskConfigError):
        Detectors(["bad"], [CustomDetector("bad", "(")])


def test_non_ascii_text() -> None:
    text = "Grüße an jörg@exämple.com und ö 4111111111111111 ✓"
    assert [text[s:e] for s, e, _ in find(text)] == ["jörg@exämple.com", "4111111111111111"]
    assert find("４１１１１１１１１１１１１１１１") == []       # full-width digits: not ASCII
