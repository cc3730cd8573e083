"""Content detectors: find sensitive values in free text.

Each built-in detector is three things:

- a *gate*: a necessary condition checked on the value's UTF-8 bytes with C-speed operations
  only (substring tests, a digit count by `bytes.translate`): a card needs 13 digits, an email
  an "@", a JWT "eyJ". (Python's `re` costs 0.2-1 µs per short value per pattern even when it
  finds nothing; the gates cost ~0.1 µs for a whole set.) A DataRow body is gated once as a whole,
  then each text column; only values that pass are decoded, and only the detectors that passed
  run;
- a *candidate* regex, deliberately loose about content but strict about boundaries (a card
  number does not start in the middle of a longer digit run or a word);
- a *validator* in Python that keeps false positives down: Luhn and issuer ranges for cards,
  mod-97 and per-country length for IBANs, the SSA's never-issued ranges for SSNs, `ipaddress`
  for IPv6, a JSON header with "alg" for JWTs, and small deny lists (a number introduced by
  "order" or "invoice" is not a card; "logo@2x.png" is not an email).

Digits are ASCII `[0-9]` everywhere (full-width and other Unicode digits are not detected).

What each detector accepts (what the unit tests pin down):

credit_card     13-19 digits, contiguous or in printed groups split by one consistent separator
                (space or dash): 4-4-4-4 and the like (fours, then a last group of 1-4), Amex
                4-6-5, Diners 4-6-4.
                Luhn-valid, issuer prefix and length consistent (Visa 4: 13/16/19; Mastercard
                51-55, 2221-2720: 16; Amex 34/37: 15; Diners 300-305/36/38/39: 14-19; JCB
                3528-3589: 16-19; Mir 2200-2204: 16-19; Maestro/Discover/UnionPay 50, 56-69:
                13-19). Not all one digit; not adjacent to letters, decimals or further digits;
                not introduced by order/invoice/tracking/ref/... (see _CARD_DENY_WORDS).
email           local@domain (letters may be non-ASCII, the TLD is 2-63 ASCII letters); no
                empty labels, no "..", TLD not a file extension (png, jpg, svg, ...).
phone           "+" then 9-15 digits (E.164; "+1" must be a valid NANP number), groups split by
                space, dot or dash, "(..)" allowed; NANP "(415) 555-2671", "415-555-2671",
                "1 415.555.2671"; national trunk-0 formats "020 7946 0958", "06 12 34 56 78",
                "030-1234567" (10-11 digits, groups split by one kind of separator, not right
                after another digit group). Bare digit runs without "+" are not phones.
us_ssn          AAA-GG-SSSS or AAA GG SSSS (separator required: a bare 9-digit number is not
                treated as an SSN); area not 000, 666, 900-999; group not 00; serial not 0000.
iban            two letters, two check digits, BBAN compact or in groups of four; upper case;
                the country's registered length; ISO 7064 mod-97 == 1.
ipv4            dotted quad, each octet 0-255 without leading zeros.
ipv6            any form `ipaddress.IPv6Address` accepts (incl. "::ffff:1.2.3.4"), at least two
                colons, not the bare unspecified address "::".
jwt             header.payload.signature in base64url, header decodes to a JSON object with "alg"
                (alg "none" with an empty signature included).
aws_access_key  AKIA/ASIA/ABIA/ACCA + 16 upper-case letters or digits (20 chars), standalone.
                (The 40-character secret key has no shape of its own and is not detected.)
private_key     a PEM "-----BEGIN ... PRIVATE KEY-----" block up to its END line; without an END
                line, the header and the base64 run after it.
api_key         vendor token formats: OpenAI/Anthropic/DeepSeek "sk-..." (20+ chars after "sk-",
                with a digit, an upper- and a lower-case letter), Stripe sk_/pk_/rk_ live/test,
                GitHub ghp_/gho_/ghu_/ghs_/ghr_ and github_pat_, Slack xox?- and xapp-,
                Google AIza..., GitLab glpat-/glrt-/gldt-, SendGrid SG.x.y, npm_, pypi-AgE...,
                Hugging Face hf_, Shopify shpat_/shpca_/shppa_/shpss_, Twilio SK+32 hex,
                DigitalOcean dop_v1_, Google OAuth ya29., xAI xai-.

Custom detectors are user regexes: every non-empty match is a detection, no validator, no gate:
a set that contains one decodes and scans every text value.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .errors import MaskConfigError
from .spec import DETECTOR_NAMES, CustomDetector

Hit = tuple[int, int, str]          # (start, end, detector name), end exclusive

# A validator takes the text and the candidate match; it returns the accepted span (which may be
# narrower than the match, or wider for PEM blocks) or None.
Validator = Callable[[str, "re.Match[str]"], "tuple[int, int] | None"]


@dataclass(frozen=True, slots=True)
class _Builtin:
    name: str
    # the gate, a necessary condition on the value's UTF-8 bytes, C-speed operations only:
    min_digits: int                # at least this many ASCII digits
    literals: tuple[bytes, ...]    # one of these occurs (empty: no condition)
    extra: Callable[[bytes], bool] | None   # and this holds; it implies one of the literals
    candidate: re.Pattern[str]
    validate: Validator | None
    retry: bool                    # after a rejected candidate, search again from its start + 1


# -- credit_card --------------------------------------------------------------------------------

# A comma next to digits is a thousands separator only before a group of exactly three digits
# ("1,234,567"); before or after a longer run it separates list items ("4111...,5500..." in a
# CSV line, string_agg or a text array), so those candidates are kept.
_CARD_CAND = re.compile(
    r"(?<![0-9A-Za-z_.])(?:(?<![0-9],)|(?=[0-9]{4}))[0-9]++(?:[ -][0-9]++)*+"
    r"(?![0-9A-Za-z_]|\.[0-9]|,[0-9]{3}(?![0-9]))")
_CARD_DENY_WORDS = frozenset({
    "order", "orders", "invoice", "inv", "tracking", "track", "shipment", "parcel", "ticket",
    "ref", "reference", "isbn", "imei", "ean", "upc", "gtin", "serial", "sku", "txn",
    "transaction", "booking", "confirmation", "case", "po", "awb", "waybill",
})
_CARD_ALLOW_WORDS = frozenset({
    "card", "cc", "pan", "visa", "mastercard", "amex", "credit", "debit", "cardnumber",
})
_WORDS_BEFORE = re.compile(r"([A-Za-z]+)[^A-Za-z0-9]{0,4}(?:([A-Za-z]+)[^A-Za-z0-9]{0,4})?$")
_NUMBER_WORDS = frozenset({"no", "nr", "num", "number", "id", "n"})


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_issuer_ok(d: str) -> bool:
    """Issuer prefix (IIN) and length consistent with a known card scheme."""
    n = len(d)
    first = d[0]
    if first == "4":
        return n in (13, 16, 19)
    p2 = int(d[:2])
    p4 = int(d[:4])
    if first == "5":
        if 51 <= p2 <= 55:
            return n == 16
        return 13 <= n <= 19                      # Maestro 50, 56-59
    if first == "2":
        if 2221 <= p4 <= 2720:
            return n == 16
        return 2200 <= p4 <= 2204 and 16 <= n <= 19
    if first == "3":
        if p2 in (34, 37):
            return n == 15
        if 3528 <= p4 <= 3589:
            return 16 <= n <= 19
        if 300 <= int(d[:3]) <= 305 or p2 in (36, 38, 39) or p4 == 3095:
            return 14 <= n <= 19
        return False
    if first == "6":
        return 13 <= n <= 19                      # Discover, UnionPay, Maestro
    return False


def _card_digits_ok(d: str) -> bool:
    return (13 <= len(d) <= 19 and d.count(d[0]) != len(d)
            and card_issuer_ok(d) and luhn_ok(d))


def _card_denied_by_context(text: str, start: int) -> bool:
    m = _WORDS_BEFORE.search(text, max(0, start - 40), start)
    if m is None:
        return False
    words = [w.lower() for w in m.groups() if w]
    # _WORDS_BEFORE captures the nearer word second when there are two
    if len(words) == 2:
        words.reverse()
    if any(w in _CARD_ALLOW_WORDS for w in words):
        return False
    near = words[0]
    if near in _CARD_DENY_WORDS:
        return True
    return near in _NUMBER_WORDS and len(words) > 1 and words[1] in _CARD_DENY_WORDS


def _card_grouping_ok(sizes: list[int], final: bool) -> bool:
    """Printed groupings: 4-4-4-4 (and 4-4-4-1 .. 4-4-4-4-3: fours, then a shorter last group),
    Amex 4-6-5, Diners 4-6-4. With final=False: could `sizes` still grow into one?"""
    if sizes[:2] == [4, 6]:
        if len(sizes) == 2:
            return not final
        return len(sizes) == 3 and sizes[2] in (4, 5)
    if any(n != 4 for n in sizes[:-1]) or not 1 <= sizes[-1] <= 4:
        return False
    total = sum(sizes)
    if final:
        return 13 <= total <= 19
    return total <= 19 and (sizes[-1] == 4 or total >= 13)


def _validate_card(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s, e = m.span()
    cand = text[s:e]
    if len(cand) <= 19 and cand.isdigit():                       # the common, contiguous case
        if _card_digits_ok(cand) and not _card_denied_by_context(text, s):
            return s, e
        return None
    # groups: [(start, end)] of digit runs inside the candidate
    groups = [(g.start() + s, g.end() + s) for g in re.finditer(r"[0-9]+", cand)]
    for i, (gs, ge) in enumerate(groups):
        glen = ge - gs
        if 13 <= glen <= 19:                                      # a whole card as one group
            d = text[gs:ge]
            if _card_digits_ok(d) and not _card_denied_by_context(text, gs):
                return gs, ge
            continue
        if glen != 4:
            continue
        sep = text[ge] if ge < e else ""
        best = None
        sizes = [4]
        for j in range(i + 1, len(groups)):
            if text[groups[j - 1][1]] != sep:                     # separators must agree
                break
            js, je = groups[j]
            sizes.append(je - js)
            if not _card_grouping_ok(sizes, final=False):
                break
            if _card_grouping_ok(sizes, final=True):
                d = "".join(text[a:b] for a, b in groups[i:j + 1])
                if _card_digits_ok(d) and (sizes[1] != 6 or d[0] == "3"):   # 4-6-x: Amex, Diners
                    best = je
        if best is not None and not _card_denied_by_context(text, gs):
            return gs, best
    return None


# -- email --------------------------------------------------------------------------------------

_EMAIL_CAND = re.compile(
    r"(?<![\w.%+-])[\w%+-][\w.%+-]{0,63}"
    r"@[\w-]{1,63}(?:\.[\w-]{1,63})*\.[A-Za-z]{2,63}(?![\w-])")
_FILE_EXTENSIONS = frozenset({
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "avif", "heic",
    "css", "js", "mjs", "ts", "map", "json", "txt", "pdf", "woff", "woff2", "ttf",
})


def _validate_email(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    value = m.group()
    local, _, domain = value.partition("@")
    if local.endswith(".") or ".." in local:
        return None
    labels = domain.split(".")
    for label in labels:
        if label.startswith("-") or label.endswith("-") or "_" in label:
            return None
    if labels[-1].lower() in _FILE_EXTENSIONS:
        return None
    return m.span()


# -- phone --------------------------------------------------------------------------------------

_PHONE_CAND = re.compile(
    r"(?<![0-9A-Za-z_+])(?<![0-9][.-])(?:"
    r"(?P<intl>\+[1-9][0-9]{0,3}+(?:[ .-]?+(?:\([0-9]{1,4}\)|[0-9]{1,5}+)){1,7}+)"
    r"|(?<![0-9] )(?P<nanp>(?:1[ .-])?(?:\([2-9][0-9]{2}\)[ .-]?|[2-9][0-9]{2}[ .-])"
    r"[2-9][0-9]{2}[ .-][0-9]{4})"
    r"|(?<![0-9] )(?P<trunk>0[1-9][0-9]{0,3}+(?:[ -][0-9]{2,8}+){1,5}+)"
    r")(?![0-9A-Za-z_]|[.-][0-9])")
_DATE_LIKE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}[-.][0-9]{2}[-.][0-9]{4}")
_GROUP_END = re.compile(r"[0-9)](?=[ .-]|$)")


def _phone_digits_ok(kind: str, value: str) -> bool:
    digits = "".join(ch for ch in value if ch.isdigit())
    if _DATE_LIKE.search(value):
        return False
    if kind == "intl":
        if digits[0] == "1":
            return len(digits) == 11 and digits[1] in "23456789" and digits[4] in "23456789"
        return 9 <= len(digits) <= 15
    if kind == "trunk":
        seps = {ch for ch in value if ch in " -"}
        return 10 <= len(digits) <= 11 and len(seps) == 1
    return True                                                   # nanp: the regex is the check


def _validate_phone(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    kind = m.lastgroup or ""
    s, e = m.span()
    value = text[s:e]
    if _phone_digits_ok(kind, value):
        return s, e
    if kind == "nanp":
        return None
    # a phone followed by more digit groups ("+1 415 555 2671 2024"): try shorter endings
    ends = [g.end() for g in _GROUP_END.finditer(value)]
    for end in reversed(ends[:-1]):
        if _phone_digits_ok(kind, value[:end]):
            return s, s + end
    return None


# -- us_ssn -------------------------------------------------------------------------------------

_SSN_CAND = re.compile(
    r"(?<![0-9A-Za-z_])(?<![0-9]-)([0-9]{3})([- ])([0-9]{2})\2([0-9]{4})(?![0-9A-Za-z_]|-[0-9])")
_SSN_DENY = frozenset({"078051120", "219099999", "457555462"})   # publicised, never real


def _validate_ssn(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    area, _, group, serial = m.groups()
    a = int(area)
    if a == 0 or a == 666 or a >= 900 or group == "00" or serial == "0000":
        return None
    if area + group + serial in _SSN_DENY:
        return None
    return m.span()


# -- iban ---------------------------------------------------------------------------------------

IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
_IBAN_CAND = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}"
    r"(?:[A-Z0-9]{11,30}+|(?: [A-Z0-9]{4}){2,8}+(?: [A-Z0-9]{1,3})?+)(?![A-Za-z0-9])")


def iban_ok(compact: str) -> bool:
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _validate_iban(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s, e = m.span()
    value = text[s:e]
    want = IBAN_LENGTHS.get(value[:2])
    if want is None:
        return None
    if " " not in value:
        return (s, e) if iban_ok(value) else None
    # grouped: the IBAN may be followed by an upper-case word that looks like one more group
    count = 0
    for i, ch in enumerate(value):
        if ch != " ":
            count += 1
            if count == want:
                end = i + 1
                if end == len(value) or value[end] == " ":
                    return (s, s + end) if iban_ok(value[:end].replace(" ", "")) else None
                return None
    return None


# -- ipv4 / ipv6 --------------------------------------------------------------------------------

_IPV4_CAND = re.compile(
    r"(?<![0-9A-Za-z_.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9A-Za-z_]|\.[0-9])")


def _validate_ipv4(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    for octet in m.group().split("."):
        if (len(octet) > 1 and octet[0] == "0") or int(octet) > 255:
            return None
    return m.span()


_IPV6_CAND = re.compile(
    r"(?<![0-9A-Za-z_:.])(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,8}"
    r"(?:(?:\.[0-9]{1,3}){3})?(?![0-9A-Za-z_:]|\.[0-9])")


def _validate_ipv6(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    value = m.group()
    if value.strip(":") == "":
        return None
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return m.span()


# -- jwt ----------------------------------------------------------------------------------------

_JWT_CAND = re.compile(
    r"(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{2,})\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*+"
    r"(?![A-Za-z0-9_.-])")


def _validate_jwt(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    head = m.group(1)
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        return None
    return m.span()


# -- aws_access_key / private_key / api_key -----------------------------------------------------

_AWS_CAND = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])")

_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=:,\s\\-]*+")


def _validate_pem(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    end = _PEM_END.search(text, m.end())
    if end is not None:
        return m.start(), end.end()
    # no END line (truncated value): take the base64 run after the header
    stop = _PEM_BODY.match(text, m.end()).end()
    while stop > m.end() and text[stop - 1] in " \t\r\n\\":
        stop -= 1
    return m.start(), stop


_API_CAND = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"(?P<sk>sk-[A-Za-z0-9_-]{20,}+)"
    r"|(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{16,}+"
    r"|gh[pousr]_[A-Za-z0-9]{36,255}+"
    r"|github_pat_[A-Za-z0-9_]{22,255}+"
    r"|(?P<slack>xox[abeoprs]-[A-Za-z0-9-]{10,}+)"
    r"|xapp-[0-9]-[A-Za-z0-9-]{10,}+"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|gl(?:pat|rt|dt)-[0-9A-Za-z_-]{20,}+"
    r"|SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"
    r"|npm_[A-Za-z0-9]{36}"
    r"|pypi-AgE[A-Za-z0-9_-]{50,}+"
    r"|hf_[A-Za-z0-9]{30,}+"
    r"|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"
    r"|SK[0-9a-f]{32}"
    r"|dop_v1_[a-f0-9]{64}"
    r"|ya29\.[0-9A-Za-z_-]{20,}+"
    r"|xai-[A-Za-z0-9]{40,}+"
    r")(?![A-Za-z0-9_-])")
_API_TRIGGER = (r"sk-|[spr]k_(?:live|test)_|gh[pousr]_|github_pat_|xox[abeoprs]-|xapp-|AIza"
                r"|gl(?:pat|rt|dt)-|SG\.|npm_|pypi-|hf_|shp(?:at|ca|pa|ss)_|SK[0-9a-f]{8}"
                r"|dop_v1_|ya29\.|xai-")


def _validate_api_key(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    if m.group("sk") is not None:
        body = m.group("sk")[3:]
        if not (any(c.isdigit() for c in body) and any(c.isupper() for c in body)
                and any(c.islower() for c in body)):
            return None                                   # "sk-a-long-lowercase-slug" is prose
    elif m.group("slack") is not None:
        if not any(c.isdigit() for c in m.group("slack")):
            return None
    return m.span()


# -- the table ----------------------------------------------------------------------------------

# every prefix of _API_CAND ends in "-", "_" or "." (or is AIza / SK): a lookbehind from that
# character is much cheaper than an alternation of twenty literals
_API_GATE = re.compile(
    rb"[-_.](?<=sk-|sk_|pk_|rk_|hp_|ho_|hu_|hs_|hr_|ub_|xa-|xb-|xe-|xo-|xp-|xr-|xs-|pp-|at-"
    rb"|rt-|dt-|SG\.|pm_|pi-|hf_|at_|ca_|pa_|ss_|op_|29\.|ai-)")


def _api_extra(v: bytes) -> bool:
    return len(v) >= 15 and (b"AIza" in v or b"SK" in v or _API_GATE.search(v) is not None)


def _count_at_least(ch: bytes, n: int) -> Callable[[bytes], bool]:
    return lambda v: v.count(ch) >= n


_AWS_PREFIXES = (b"AKIA", b"ASIA", b"ABIA", b"ACCA")
_AWS_GATE = re.compile(rb"A(?:KI|SI|BI|CC)A").search

BUILTINS: dict[str, _Builtin] = {b.name: b for b in (
    _Builtin("private_key", 0, (b"-----BEGIN ",), None, _PEM_BEGIN, _validate_pem, False),
    _Builtin("jwt", 0, (b"eyJ",), None, _JWT_CAND, _validate_jwt, False),
    _Builtin("api_key", 0, (b"_", b"-", b".", b"AIza", b"SK"), _api_extra, _API_CAND,
             _validate_api_key, False),
    _Builtin("aws_access_key", 0, _AWS_PREFIXES, lambda v: _AWS_GATE(v) is not None, _AWS_CAND,
             None, False),
    _Builtin("credit_card", 13, (), None, _CARD_CAND, _validate_card, False),
    _Builtin("iban", 2, (), lambda v: len(v) >= 15 and v.lower() != v, _IBAN_CAND,
             _validate_iban, True),
    _Builtin("email", 0, (b"@",), None, _EMAIL_CAND, _validate_email, False),
    _Builtin("us_ssn", 9, (b"-", b" "), None, _SSN_CAND, _validate_ssn, True),
    _Builtin("phone", 9, (), None, _PHONE_CAND, _validate_phone, True),
    _Builtin("ipv6", 0, (b":",), _count_at_least(b":", 2), _IPV6_CAND, _validate_ipv6, True),
    _Builtin("ipv4", 4, (b".",), _count_at_least(b".", 3), _IPV4_CAND, _validate_ipv4, True),
)}
_DIGITS = b"0123456789"


def _make_check(literals: tuple[bytes, ...],
                extra: Callable[[bytes], bool] | None) -> Callable[[bytes], bool] | None:
    """One callable for "one of `literals` occurs and `extra` holds" (`extra` implies the
    literals: they are there for the set-wide literal search)."""
    if extra is not None or not literals:
        return extra
    if len(literals) == 1:
        (lit,) = literals
        return lambda v: lit in v
    return lambda v: any(lit in v for lit in literals)
if set(BUILTINS) != set(DETECTOR_NAMES):
    raise RuntimeError("detectors.BUILTINS and spec.DETECTOR_NAMES disagree")


class Detectors:
    """A compiled set of detectors: built-in names plus custom regexes.

    `gate(value_bytes)` names the detectors that could match in a value (cheap, C-speed
    necessary conditions; custom detectors always pass); `find(text, names)` runs the named
    ones (default: those whose gate passes) and returns non-overlapping hits sorted by start.
    Where two detectors claim overlapping text the longer hit wins (a JWT over the base64 inside
    it), then the earlier detector in `BUILTINS` order.
    """

    __slots__ = ("names", "_scanners", "_digit_rules", "_literal_rules", "_any_literal",
                 "_always", "_min_digits")

    def __init__(self, names: Iterable[str], custom: Sequence[CustomDetector] = ()) -> None:
        custom_by_name = {c.name: c for c in custom}
        wanted = list(dict.fromkeys(names))
        scanners: dict[str, tuple[re.Pattern[str], Validator | None, bool]] = {}
        digit_rules = []
        literal_rules = []
        always: list[str] = []
        for name in BUILTINS:                          # fixed priority order
            if name in wanted:
                b = BUILTINS[name]
                scanners[name] = (b.candidate, b.validate, b.retry)
                rule = (name, b.min_digits, _make_check(b.literals, b.extra))
                (digit_rules if b.min_digits else literal_rules).append(rule)
        for name in wanted:
            if name in BUILTINS:
                continue
            c = custom_by_name.get(name)
            if c is None:
                raise MaskConfigError(f"unknown detector {name!r}")
            try:
                pattern = re.compile(c.pattern)
            except re.error as exc:
                raise MaskConfigError(
                    f"detector {name!r}: pattern does not compile: {exc}") from exc
            scanners[name] = (pattern, None, True)
            always.append(name)
        self.names: tuple[str, ...] = tuple(scanners)
        self._scanners = scanners
        self._digit_rules = tuple(digit_rules)
        self._literal_rules = tuple(literal_rules)
        self._min_digits = min((r[1] for r in digit_rules), default=0)
        # one search tells whether any literal-gated detector can pass at all
        literals = sorted({lit for name in self.names if name in BUILTINS and
                           not BUILTINS[name].min_digits for lit in BUILTINS[name].literals},
                          key=len, reverse=True)
        self._any_literal: Callable[[bytes], object] | None
        if not literals:
            self._any_literal = None
        elif len(literals) == 1:
            only_literal = literals[0]
            self._any_literal = lambda v: only_literal in v
        else:
            self._any_literal = re.compile(b"|".join(re.escape(lit) for lit in literals)).search
        self._always = tuple(always)

    @property
    def always_scans(self) -> bool:
        """True when a custom detector is in the set: every value must be decoded and scanned."""
        return bool(self._always)

    def could_match(self, value: bytes) -> bool:
        """False when no detector of the set can match in `value`: the first half of `gate`,
        one digit count and one literal search, whatever the size of the set."""
        if self._always:
            return True
        if self._digit_rules and len(value) >= self._min_digits and (
                len(value) - len(value.translate(None, _DIGITS)) >= self._min_digits):
            return True
        any_literal = self._any_literal
        return any_literal is not None and bool(any_literal(value))

    def gate(self, value: bytes) -> list[str]:
        """Names of the detectors that could find something in `value` (UTF-8 bytes)."""
        out = []
        if self._digit_rules and len(value) >= self._min_digits:
            nd = len(value) - len(value.translate(None, _DIGITS))
            if nd >= self._min_digits:
                for name, min_digits, check in self._digit_rules:
                    if nd >= min_digits and (check is None or check(value)):
                        out.append(name)
        any_literal = self._any_literal
        if any_literal is not None and any_literal(value):
            for name, _, check in self._literal_rules:
                if check is None or check(value):
                    out.append(name)
        if self._always:
            out.extend(self._always)
        return out

    def find(self, text: str, names: Iterable[str] | None = None) -> list[Hit]:
        if names is None:
            names = self.gate(text.encode("utf-8", "surrogatepass"))
        hits: list[Hit] = []
        scanners = self._scanners
        end_of_text = len(text)
        for name in names:
            pattern, validate, retry = scanners[name]
            search = pattern.search
            pos = 0
            while pos <= end_of_text:
                m = search(text, pos)
                if m is None:
                    break
                if validate is None:
                    span: tuple[int, int] | None = m.span()
                    if span[0] == span[1]:
                        span = None
                else:
                    span = validate(text, m)
                if span is not None:
                    hits.append((span[0], span[1], name))
                    pos = max(span[1], m.start() + 1)
                else:
                    pos = m.start() + 1 if retry else max(m.end(), m.start() + 1)
        if len(hits) > 1:
            hits = _resolve_overlaps(hits, self.names)
        return hits

    def __repr__(self) -> str:
        return f"Detectors({list(self.names)!r})"


def _resolve_overlaps(hits: list[Hit], order: tuple[str, ...]) -> list[Hit]:
    """Disjoint hits: within each cluster of overlapping hits, longer first, then by rank."""
    rank = {name: i for i, name in enumerate(order)}
    hits.sort()
    out: list[Hit] = []
    cluster: list[Hit] = []
    cluster_end = -1
    for h in hits + [(1 << 62, 1 << 62, "")]:
        if h[0] < cluster_end:
            cluster.append(h)
            cluster_end = max(cluster_end, h[1])
            continue
        if len(cluster) == 1:
            out.append(cluster[0])
        elif cluster:
            chosen: list[Hit] = []
            for c in sorted(cluster, key=lambda c: (c[0] - c[1], rank[c[2]], c[0])):
                if all(c[1] <= k[0] or k[1] <= c[0] for k in chosen):
                    chosen.append(c)
            out.extend(sorted(chosen))
        cluster = [h]
        cluster_end = h[1]
    return out


_CACHE: dict[tuple[str, ...], Detectors] = {}


def find(text: str, names: Iterable[str] = DETECTOR_NAMES) -> list[Hit]:
    """Hits of built-in detectors `names` in `text` (compiled sets are cached)."""
    key = tuple(names)
    dets = _CACHE.get(key)
    if dets is None:
        if len(_CACHE) > 64:
            _CACHE.clear()
        dets = _CACHE[key] = Detectors(key)
    return dets.find(text)
