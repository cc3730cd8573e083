"""A JWT sent as the password: verified offline against a JWKS file or PEM public keys.

    verifier = TokenVerifier(config.jwt)        # TokenConfigError: a key file is unusable
    identity = verifier.verify(password)        # TokenRejected(.reason): 28P01 for the client
    verifier.reload()                           # on SIGHUP; a broken file keeps the old keys

PyJWT checks the signature, the audience, the issuer and that `exp` is there; the time claims
are checked here against `now` (so tests and callers can fix the clock), with PyJWT's meaning.
Only asymmetric algorithms are ever accepted: never "none", never HS* (an HMAC "secret" would
be the public key, which anyone has), and a key verifies only the algorithms its type fits.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from . import Identity, JwtConfig

MAX_TOKEN = 16384
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
ASYMMETRIC = RSA_ALGORITHMS | frozenset(EC_ALGORITHMS.values()) | {"EdDSA"}
_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_TIME_CLAIMS = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}


class TokenConfigError(Exception):
    """A key or JWKS file is unusable: one line that names the file."""


class TokenRejected(Exception):
    """The token does not prove an identity; `.reason` is for our log, the client gets 28P01."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Key:
    kid: str | None
    key: object                               # a cryptography public key
    algorithms: frozenset[str]                # what this key may verify


def looks_like_jwt(text: str) -> bool:
    """A compact JWS (three base64url parts) whose header is a JSON object: worth verifying."""
    if not isinstance(text, str) or len(text) > MAX_TOKEN or not _SHAPE.match(text):
        return False
    head = text.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict)


class TokenVerifier:
    def __init__(self, config: JwtConfig):
        self.config = config
        self.algorithms = frozenset(config.algorithms)
        if not self.algorithms or not self.algorithms <= ASYMMETRIC:
            raise TokenConfigError(f"jwt.algorithms: only {', '.join(sorted(ASYMMETRIC))} can be used")
        self.last_error: str | None = None    # why the last reload() failed
        self._keys = self._load()

    def reload(self) -> bool:
        """Re-read the key files; False (and the old keys kept) when one is broken."""
        try:
            keys = self._load()
        except TokenConfigError as error:
            self.last_error = str(error)
            return False
        self._keys, self.last_error = keys, None
        return True

    def verify(self, token: str, *, now: float | None = None) -> Identity:
        """The identity a valid token proves (method "jwt"); TokenRejected otherwise."""
        if not looks_like_jwt(token):
            raise TokenRejected("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise TokenRejected("algorithm not allowed")
        claims = self._signed_claims(token, alg, self._candidates(header.get("kid"), alg))
        _check_times(claims, time.time() if now is None else now, self.config.leeway)
        subject = claims.get(self.config.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise TokenRejected("no subject")
        return Identity(name=subject, groups=self._groups(claims), method="jwt")

    def _candidates(self, kid: object, alg: str) -> list[_Key]:
        # A kid picks the key of that name; keys without a name (PEM files) stay candidates,
        # so tokens carrying a kid work with key_files too.
        keys = self._keys
        if isinstance(kid, str) and any(k.kid == kid for k in keys):
            keys = [k for k in keys if k.kid == kid]
        elif kid is not None:
            keys = [k for k in keys if k.kid is None]
        fitting = [k for k in keys if alg in k.algorithms]
        if not fitting:
            raise TokenRejected("unknown key")
        return fitting

    def _signed_claims(self, token: str, alg: str, keys: list[_Key]) -> dict:
        config = self.config
        for candidate in keys:
            try:
                return jwt.decode(token, key=candidate.key, algorithms=[alg], audience=config.audience,
                                  issuer=config.issuer,
                                  options={"require": ["exp"], "verify_sub": False, **_TIME_CLAIMS})
            except jwt.InvalidSignatureError:
                continue                          # the next key of the same type may have signed it
            except jwt.PyJWTError as error:
                raise TokenRejected(_reason(error)) from None
        raise TokenRejected("bad signature")

    def _groups(self, claims: dict) -> frozenset[str]:
        if self.config.groups_claim is None:
            return frozenset()
        value = claims.get(self.config.groups_claim)
        if isinstance(value, str) and value:
            return frozenset({value})
        if isinstance(value, list) and all(isinstance(g, str) for g in value):
            return frozenset(g for g in value if g)
        return frozenset()

    def _load(self) -> list[_Key]:
        config = self.config
        keys = _jwks(config.jwks_file) if config.jwks_file is not None else []
        for path in config.key_files:
            keys.append(_pem(path))
        usable = [k for k in keys if k.algorithms & self.algorithms]
        if not usable:
            names = ", ".join(str(p) for p in ((config.jwks_file,) if config.jwks_file else config.key_files))
            raise TokenConfigError(f"{names}: no key for the allowed algorithms ({', '.join(sorted(self.algorithms))})")
        return usable


def _reason(error: jwt.PyJWTError) -> str:
    if isinstance(error, jwt.MissingRequiredClaimError):
        return {"exp": "no expiry", "aud": "wrong audience", "iss": "wrong issuer"}.get(error.claim, "malformed")
    for kind, reason in ((jwt.InvalidAudienceError, "wrong audience"), (jwt.InvalidIssuerError, "wrong issuer"),
                         (jwt.InvalidAlgorithmError, "algorithm not allowed"), (jwt.InvalidKeyError, "unknown key")):
        if isinstance(error, kind):
            return reason
    return "malformed"


def _check_times(claims: dict, now: float, leeway: float) -> None:
    """exp, nbf and iat as PyJWT reads them (NumericDate, whole seconds), against `now`."""
    exp, nbf, iat = (_numeric_date(claims, name) for name in ("exp", "nbf", "iat"))
    if exp is None:
        raise TokenRejected("no expiry")
    if exp <= now - leeway:
        raise TokenRejected("expired")
    if (nbf is not None and nbf > now + leeway) or (iat is not None and iat > now + leeway):
        raise TokenRejected("not yet valid")


def _numeric_date(claims: dict, name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    # json.loads reads Infinity and NaN: a token that never expires is malformed, not eternal.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenRejected("malformed")
    return int(value)


def _algorithms_for(key: object) -> frozenset[str]:
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = EC_ALGORITHMS.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return frozenset({"EdDSA"})
    return frozenset()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TokenConfigError(f"{path}: cannot be read ({error.strerror or error})") from None


def _pem(path: Path) -> _Key:
    data = _read(path)
    if b"PRIVATE KEY" in data:
        raise TokenConfigError(f"{path}: holds a private key; wireproxy needs the public key only")
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except ValueError:
        raise TokenConfigError(f"{path}: not a PEM public key or certificate") from None
    algorithms = _algorithms_for(key)
    if not algorithms:
        raise TokenConfigError(f"{path}: a key type JWTs cannot be verified with here")
    return _Key(None, key, algorithms)


def _jwks(path: Path) -> list[_Key]:
    try:
        document = json.loads(_read(path))
    except ValueError:
        raise TokenConfigError(f"{path}: not a JSON document") from None
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list):
        raise TokenConfigError(f'{path}: not a JWKS document (no "keys" list)')
    keys = []
    for member in members:
        if not isinstance(member, dict) or member.get("kty") == "oct" or member.get("use", "sig") != "sig":
            continue                              # no HMAC secrets, no encryption keys
        if any(private in member for private in ("d", "p", "q")):
            raise TokenConfigError(f"{path}: holds a private key; wireproxy needs public keys only")
        try:
            jwk = jwt.PyJWK(member)
        except jwt.PyJWTError:
            continue                              # as PyJWKSet: skip keys it cannot use
        algorithms = _algorithms_for(jwk.key)
        if isinstance(member.get("alg"), str):
            algorithms &= {member["alg"]}
        kid = member.get("kid")
        keys.append(_Key(kid if isinstance(kid, str) else None, jwk.key, algorithms))
    return keys
