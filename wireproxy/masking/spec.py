"""What a `[[mask]]` rule and a `[[detector]]` say, as plain data.

Built by wireproxy.rulefile from a rule file; consumed by the masker. Kept here, apart from the
masker itself, so the rule-file loader needs nothing of masking's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Built-in content detectors (DESIGN.md names these at least).
DETECTOR_NAMES: tuple[str, ...] = (
    "credit_card", "email", "phone", "us_ssn", "iban", "ipv4", "ipv6", "jwt",
    "aws_access_key", "private_key", "api_key",
)

STYLES: tuple[str, ...] = ("redact", "partial", "hash", "null")


@dataclass(frozen=True)
class CustomDetector:
    """`[[detector]] name = "order_ref"  pattern = "ORD-[0-9]{8}"`: a detector from a regex."""

    name: str
    pattern: str


@dataclass(frozen=True)
class MaskSpec:
    id: str
    columns: tuple[str, ...] = ()          # globs over "column" or "table.column" / "schema.table.column"
    detectors: tuple[str, ...] = ()        # built-in or custom detector names
    style: str = "redact"
    users: tuple[str, ...] = ()            # globs over the identity's name; empty: everyone
    exempt_users: tuple[str, ...] = ()     # the older spelling of except_users: the two add up
    groups: tuple[str, ...] = ()           # globs over the identity's groups; empty: any groups
    except_users: tuple[str, ...] = ()     # names that see raw values
    strict: bool = False                   # block queries using a masked column inside an expression
    keep_last: int = 4                     # partial style: characters kept at the end
    binary: str = "null"                   # masked non-text column in binary format: "null" or "refuse"
    source: str = ""                       # "file:line" for messages
    options: dict = field(default_factory=dict, hash=False, compare=False)
