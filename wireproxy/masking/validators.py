"""The built-in detectors' candidate patterns and validators: each takes the text and a
candidate match and returns the accepted span or None (see detectors.py for what each finds)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable

# The accepted span may be narrower than the match, or wider (PEM blocks).
Validator = Callable[[str, "re.Match[str]"], "tuple[int, int] | None"]


# -- credit_card --------------------------------------------------------------------------------

# A comma next to digits is a thousands separator only before a group of exactly three digits
# ("1,234,567"); before or after a longer run it separates list items ("4111...,5500..." in a
# CSV line, string_agg or a text array), so those candidates are kept.
CARD_CAND = re.compile(
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


def validate_card(text: str, m: re.Match[str]) -> tuple[int, int] | None:
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

EMAIL_CAND = re.compile(
    r"(?<![\w.%+-])[\w%+-][\w.%+-]{0,63}"
    r"@[\w-]{1,63}(?:\.[\w-]{1,63})*\.[A-Za-z]{2,63}(?![\w-])")
_FILE_EXTENSIONS = frozenset({
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "avif", "heic",
    "css", "js", "mjs", "ts", "map", "json", "txt", "pdf", "woff", "woff2", "ttf",
})


def validate_email(text: str, m: re.Match[str]) -> tuple[int, int] | None:
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

PHONE_CAND = re.compile(
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


def validate_phone(text: str, m: re.Match[str]) -> tuple[int, int] | None:
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

SSN_CAND = re.compile(
    r"(?<![0-9A-Za-z_])(?<![0-9]-)([0-9]{3})([- ])([0-9]{2})\2([0-9]{4})(?![0-9A-Za-z_]|-[0-9])")
_SSN_DENY = frozenset({"078051120", "219099999", "457555462"})   # publicised, never real


def validate_ssn(text: str, m: re.Match[str]) -> tuple[int, int] | None:
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
IBAN_CAND = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}"
    r"(?:[A-Z0-9]{11,30}+|(?: [A-Z0-9]{4}){2,8}+(?: [A-Z0-9]{1,3})?+)(?![A-Za-z0-9])")


def iban_ok(compact: str) -> bool:
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def validate_iban(text: str, m: re.Match[str]) -> tuple[int, int] | None:
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

IPV4_CAND = re.compile(
    r"(?<![0-9A-Za-z_.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9A-Za-z_]|\.[0-9])")


def validate_ipv4(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    for octet in m.group().split("."):
        if (len(octet) > 1 and octet[0] == "0") or int(octet) > 255:
            return None
    return m.span()


IPV6_CAND = re.compile(
    r"(?<![0-9A-Za-z_:.])(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,8}"
    r"(?:(?:\.[0-9]{1,3}){3})?(?![0-9A-Za-z_:]|\.[0-9])")


def validate_ipv6(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    value = m.group()
    if value.strip(":") == "":
        return None
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return m.span()


# -- jwt ----------------------------------------------------------------------------------------

JWT_CAND = re.compile(
    r"(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{2,})\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*+"
    r"(?![A-Za-z0-9_.-])")


def validate_jwt(text: str, m: re.Match[str]) -> tuple[int, int] | None:
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

AWS_CAND = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])")

PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=:,\s\\-]*+")


def validate_pem(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    end = _PEM_END.search(text, m.end())
    if end is not None:
        return m.start(), end.end()
    # no END line (truncated value): take the base64 run after the header
    stop = _PEM_BODY.match(text, m.end()).end()
    while stop > m.end() and text[stop - 1] in " \t\r\n\\":
        stop -= 1
    return m.start(), stop


API_CAND = re.compile(
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


def validate_api_key(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    if m.group("sk") is not None:
        body = m.group("sk")[3:]
        if not (any(c.isdigit() for c in body) and any(c.isupper() for c in body)
                and any(c.islower() for c in body)):
            return None                                   # "sk-a-long-lowercase-slug" is prose
    elif m.group("slack") is not None:
        if not any(c.isdigit() for c in m.group("slack")):
            return None
    return m.span()
