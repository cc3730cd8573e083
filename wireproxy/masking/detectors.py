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

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .errors import MaskConfigError
from .spec import DETECTOR_NAMES, CustomDetector
from .validators import (
    API_CAND, AWS_CAND, CARD_CAND, EMAIL_CAND, IBAN_CAND,
    IPV4_CAND, IPV6_CAND, JWT_CAND, PEM_BEGIN, PHONE_CAND,
    SSN_CAND, validate_api_key, validate_card, validate_email, validate_iban,
    validate_ipv4, validate_ipv6, validate_jwt, validate_pem, validate_phone,
    validate_ssn,
)
from .validators import Validator

Hit = tuple[int, int, str]          # (start, end, detector name), end exclusive



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


# -- the table ----------------------------------------------------------------------------------

# every prefix of API_CAND ends in "-", "_" or "." (or is AIza / SK): a lookbehind from that
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
    _Builtin("private_key", 0, (b"-----BEGIN ",), None, PEM_BEGIN, validate_pem, False),
    _Builtin("jwt", 0, (b"eyJ",), None, JWT_CAND, validate_jwt, False),
    _Builtin("api_key", 0, (b"_", b"-", b".", b"AIza", b"SK"), _api_extra, API_CAND,
             validate_api_key, False),
    _Builtin("aws_access_key", 0, _AWS_PREFIXES, lambda v: _AWS_GATE(v) is not None, AWS_CAND,
             None, False),
    _Builtin("credit_card", 13, (), None, CARD_CAND, validate_card, False),
    _Builtin("iban", 2, (), lambda v: len(v) >= 15 and v.lower() != v, IBAN_CAND,
             validate_iban, True),
    _Builtin("email", 0, (b"@",), None, EMAIL_CAND, validate_email, False),
    _Builtin("us_ssn", 9, (b"-", b" "), None, SSN_CAND, validate_ssn, True),
    _Builtin("phone", 9, (), None, PHONE_CAND, validate_phone, True),
    _Builtin("ipv6", 0, (b":",), _count_at_least(b":", 2), IPV6_CAND, validate_ipv6, True),
    _Builtin("ipv4", 4, (b".",), _count_at_least(b".", 3), IPV4_CAND, validate_ipv4, True),
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
