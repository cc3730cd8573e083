"""Who a client is: identities proven to wireproxy, never claimed.

With `[[user]]` entries or a `[jwt]` table in the config, a Postgres listener terminates
authentication: a client proves itself to wireproxy (SCRAM-SHA-256 against the entry's
verifier, or a signed JWT sent as the password) and wireproxy alone logs in upstream with the
credentials it holds. With neither, authentication passes through and the identity is the
user name the client claims (`method = "claimed"`).

    scram.py      the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) and its verifiers
    tokens.py     JWT verification against a JWKS file or issuer keys
    limiter.py    failed logins, slowed per client address
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Identity:
    name: str                                   # what rules, masks and session logs see
    groups: frozenset[str] = frozenset()
    method: str = "claimed"                     # claimed | scram | jwt


@dataclass(frozen=True)
class UserEntry:
    """One `[[user]]` of the config."""
    name: str
    scram: str                                  # SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class JwtConfig:
    """The `[jwt]` table: tokens sent as the password, verified offline."""
    audience: str                               # required: a token for another service is refused
    issuer: str | None = None
    jwks_file: Path | None = None               # a JWKS document (RFC 7517)
    key_files: tuple[Path, ...] = ()            # or PEM public keys
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    subject_claim: str = "sub"                  # the identity
    groups_claim: str | None = "groups"         # a list of strings (or one string)
    leeway: float = 30.0                        # seconds of clock skew allowed on exp/nbf


@dataclass(frozen=True)
class Directory:
    """Everyone wireproxy can authenticate: the `[[user]]` entries and the JWT settings."""
    users: tuple[UserEntry, ...] = ()
    jwt: JwtConfig | None = None
    by_name: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        self.by_name.update({u.name: u for u in self.users})

    @property
    def terminates(self) -> bool:
        """Clients authenticate to wireproxy (else authentication passes through)."""
        return bool(self.users) or self.jwt is not None

    def groups_of(self, name: str) -> frozenset[str]:
        entry = self.by_name.get(name)
        return frozenset(entry.groups) if entry is not None else frozenset()
