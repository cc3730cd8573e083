"""JWTs as passwords: real keys (cryptography), real tokens (PyJWT), each refusal with its reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from wireproxy.auth import Identity, JwtConfig
from wireproxy.auth.tokens import (
    TokenConfigError,
    TokenRejected,
    TokenVerifier,
    looks_like_jwt,
)

NOW = 1_900_000_000.0
AUDIENCE, ISSUER = "wireproxy-test", "https://issuer.test"


def private_keys() -> dict:
    return {"RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1()),
            "EdDSA": ed25519.Ed25519PrivateKey.generate()}


KEYS = private_keys()
OTHER = private_keys()                  # same types, not configured anywhere


def pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk(key, kid: str, **extra) -> dict:
    public = key.public_key()
    maker = {rsa.RSAPublicKey: RSAAlgorithm, ec.EllipticCurvePublicKey: ECAlgorithm}
    algorithm = next((m for t, m in maker.items() if isinstance(public, t)), OKPAlgorithm)
    return {**algorithm.to_jwk(public, as_dict=True), "kid": kid, **extra}


def token(key, alg: str, *, kid: str | None = None, **claims) -> str:
    payload = {"sub": "alice", "aud": AUDIENCE, "iss": ISSUER, "exp": NOW + 300, "iat": NOW - 10,
               "groups": ["analysts", "oncall"]}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid} if kid else None)


def write(tmp_path: Path, name: str, data: bytes | str | dict) -> Path:
    path = tmp_path / name
    if isinstance(data, dict):
        data = json.dumps(data)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.fixture
def pem_verifier(tmp_path) -> TokenVerifier:
    files = tuple(write(tmp_path, f"{alg}.pem", pem(key)) for alg, key in KEYS.items())
    return TokenVerifier(JwtConfig(audience=AUDIENCE, issuer=ISSUER, key_files=files))


@pytest.fixture
def jwks_path(tmp_path) -> Path:
    return write(tmp_path, "jwks.json", {"keys": [jwk(key, f"kid-{alg}") for alg, key in KEYS.items()]
                                         + [jwk(OTHER["RS256"], "kid-rotated")]})


@pytest.fixture
def jwks_verifier(jwks_path) -> TokenVerifier:
    return TokenVerifier(JwtConfig(audience=AUDIENCE, issuer=ISSUER, jwks_file=jwks_path))


def rejected(verifier: TokenVerifier, text: str, reason: str) -> None:
    with pytest.raises(TokenRejected) as info:
        verifier.verify(text, now=NOW)
    assert info.value.reason == reason and str(info.value) == reason


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_each_key_type_is_accepted_from_pem_files(pem_verifier, alg):
    identity = pem_verifier.verify(token(KEYS[alg], alg), now=NOW)
    assert identity == Identity(name="alice", groups=frozenset({"analysts", "oncall"}), method="jwt")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_jwks_with_several_keys_picks_by_kid(jwks_verifier, alg):
    assert jwks_verifier.verify(token(KEYS[alg], alg, kid=f"kid-{alg}"), now=NOW).name == "alice"
    assert jwks_verifier.verify(token(KEYS[alg], alg), now=NOW).name == "alice"      # no kid: by type


def test_the_kid_decides_which_key_must_have_signed(jwks_verifier):
    assert jwks_verifier.verify(token(OTHER["RS256"], "RS256", kid="kid-rotated"), now=NOW).name == "alice"
    rejected(jwks_verifier, token(KEYS["RS256"], "RS256", kid="kid-rotated"), "bad signature")
    rejected(jwks_verifier, token(KEYS["RS256"], "RS256", kid="kid-nobody"), "unknown key")
    rejected(jwks_verifier, token(KEYS["ES256"], "ES256", kid="kid-RS256"), "unknown key")   # type misfit


def test_a_kid_works_with_pem_keys_that_have_none(pem_verifier):
    assert pem_verifier.verify(token(KEYS["ES256"], "ES256", kid="whatever"), now=NOW).name == "alice"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_signed_by_another_key(pem_verifier, alg):
    rejected(pem_verifier, token(OTHER[alg], alg), "bad signature")


@pytest.mark.parametrize("claims, reason", [
    ({"exp": NOW - 31}, "expired"),
    ({"nbf": NOW + 31}, "not yet valid"),
    ({"iat": NOW + 31}, "not yet valid"),
    ({"aud": "another-service"}, "wrong audience"),
    ({"aud": ["another-service", "a third"]}, "wrong audience"),
    ({"aud": None}, "wrong audience"),
    ({"iss": "https://elsewhere.test"}, "wrong issuer"),
    ({"iss": None}, "wrong issuer"),
    ({"exp": None}, "no expiry"),
    ({"sub": None}, "no subject"),
    ({"sub": ""}, "no subject"),
    ({"sub": 42}, "no subject"),
    ({"exp": "tomorrow"}, "malformed"),
    ({"nbf": True}, "malformed"),
])
def test_claims_are_checked(pem_verifier, claims, reason):
    rejected(pem_verifier, token(KEYS["ES256"], "ES256", **claims), reason)


def test_a_token_that_never_expires_is_malformed(pem_verifier):
    # json.loads reads Infinity; PyJWT would sign it; we must not read "valid forever".
    header = base64.urlsafe_b64encode(b'{"alg":"ES256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(
        f'{{"sub":"alice","aud":"{AUDIENCE}","iss":"{ISSUER}","exp":Infinity}}'.encode()).rstrip(b"=")
    signing_input = header + b"." + body
    signature = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256).sign(signing_input, KEYS["ES256"])
    rejected(pem_verifier, (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode(),
             "malformed")


def test_leeway_and_the_clock(pem_verifier):
    near = token(KEYS["ES256"], "ES256", exp=NOW - 29, nbf=NOW + 29)
    assert pem_verifier.verify(near, now=NOW).name == "alice"               # within 30 s of leeway
    with pytest.raises(TokenRejected, match="expired"):
        pem_verifier.verify(near, now=NOW + 2)
    with pytest.raises(TokenRejected, match="not yet valid"):
        pem_verifier.verify(near, now=NOW - 2)
    with pytest.raises(TokenRejected, match="expired"):                     # the real clock is 2026
        pem_verifier.verify(token(KEYS["ES256"], "ES256", exp=1_000_000_000, iat=None))


def test_an_audience_list_containing_ours_and_no_issuer_configured(tmp_path):
    verifier = TokenVerifier(JwtConfig(audience=AUDIENCE, key_files=(write(tmp_path, "k.pem", pem(KEYS["EdDSA"])),)))
    text = token(KEYS["EdDSA"], "EdDSA", aud=["other", AUDIENCE], iss="https://anyone.test")
    assert verifier.verify(text, now=NOW).name == "alice"


def test_alg_none_is_never_accepted(pem_verifier):
    rejected(pem_verifier, jwt.encode({"sub": "alice", "aud": AUDIENCE, "iss": ISSUER, "exp": NOW + 60},
                                      None, algorithm="none"), "algorithm not allowed")


def hs256_with(secret: bytes) -> str:
    """The algorithm confusion attack: HMAC keyed with the (public) PEM text."""
    def part(data: dict) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")
    signing_input = part({"alg": "HS256", "typ": "JWT"}) + b"." + part(
        {"sub": "mallory", "aud": AUDIENCE, "iss": ISSUER, "exp": NOW + 60})
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


def test_hs256_signed_with_the_public_key_is_refused(pem_verifier):
    rejected(pem_verifier, hs256_with(pem(KEYS["RS256"])), "algorithm not allowed")


def test_hmac_algorithms_cannot_even_be_configured(tmp_path):
    with pytest.raises(TokenConfigError, match="only"):
        TokenVerifier(JwtConfig(audience=AUDIENCE, algorithms=("HS256",),
                                key_files=(write(tmp_path, "k.pem", pem(KEYS["RS256"])),)))


def test_an_algorithm_left_out_of_the_config_is_refused(tmp_path):
    verifier = TokenVerifier(JwtConfig(audience=AUDIENCE, algorithms=("ES256",), key_files=(
        write(tmp_path, "r.pem", pem(KEYS["RS256"])), write(tmp_path, "e.pem", pem(KEYS["ES256"])))))
    rejected(verifier, token(KEYS["RS256"], "RS256"), "algorithm not allowed")
    assert verifier.verify(token(KEYS["ES256"], "ES256"), now=NOW).name == "alice"


def test_an_algorithm_no_key_fits(tmp_path):
    verifier = TokenVerifier(JwtConfig(audience=AUDIENCE, key_files=(write(tmp_path, "r.pem", pem(KEYS["RS256"])),)))
    rejected(verifier, token(KEYS["ES256"], "ES256"), "unknown key")


@pytest.mark.parametrize("text", ["", "hunter2", "a.b.c", "eyJ.eyJ.sig", "x" * 20000, "a.b", "...",
                                  "eyJhbGciOiJFUzI1NiJ9.!!!.sig"])
def test_garbage_is_malformed(pem_verifier, text):
    rejected(pem_verifier, text, "malformed")


def test_looks_like_jwt():
    assert looks_like_jwt(token(KEYS["EdDSA"], "EdDSA"))
    assert looks_like_jwt(jwt.encode({}, None, algorithm="none"))           # shape only: verify decides
    for text in ("", "password", "a.b.c", "e30.e30", "W10.e30.", "my.dotted.password", None):
        assert not looks_like_jwt(text)


@pytest.mark.parametrize("groups, expected", [
    (["a", "b"], {"a", "b"}), ("solo", {"solo"}), ([], set()), (["a", 1], set()), ({"a": 1}, set()), (None, set()),
])
def test_groups_claim_shapes(pem_verifier, groups, expected):
    assert pem_verifier.verify(token(KEYS["RS256"], "RS256", groups=groups), now=NOW).groups == frozenset(expected)


def test_custom_subject_and_groups_claims(tmp_path):
    config = JwtConfig(audience=AUDIENCE, key_files=(write(tmp_path, "k.pem", pem(KEYS["ES256"])),),
                       subject_claim="email", groups_claim=None)
    identity = TokenVerifier(config).verify(token(KEYS["ES256"], "ES256", email="a@example.test"), now=NOW)
    assert identity == Identity(name="a@example.test", groups=frozenset(), method="jwt")


def test_reload_swaps_keys_and_a_broken_file_keeps_the_old_ones(jwks_path, jwks_verifier):
    old, new = token(KEYS["ES256"], "ES256", kid="kid-ES256"), token(OTHER["ES256"], "ES256", kid="new")
    rejected(jwks_verifier, new, "unknown key")
    jwks_path.write_text(json.dumps({"keys": [jwk(OTHER["ES256"], "new")]}))
    assert jwks_verifier.reload() and jwks_verifier.last_error is None
    assert jwks_verifier.verify(new, now=NOW).name == "alice"
    rejected(jwks_verifier, old, "unknown key")
    jwks_path.write_text("{ not json")
    assert not jwks_verifier.reload()
    assert str(jwks_path) in jwks_verifier.last_error and "\n" not in jwks_verifier.last_error
    assert jwks_verifier.verify(new, now=NOW).name == "alice"


def private_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.mark.parametrize("name, content, problem", [
    ("missing.pem", None, "cannot be read"),
    ("junk.pem", b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
    ("private.pem", "private", "private key"),
])
def test_unusable_key_files(tmp_path, name, content, problem):
    path = tmp_path / name
    if content == "private":
        content = private_pem(KEYS["ES256"])
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TokenConfigError, match=problem) as info:
        TokenVerifier(JwtConfig(audience=AUDIENCE, key_files=(path,)))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert "BEGIN" not in str(info.value)


@pytest.mark.parametrize("document, problem", [
    ("[]", "no \"keys\" list"),
    ("{", "not a JSON document"),
    ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]}, "no key for the allowed algorithms"),
    ({"keys": [{**jwk(KEYS["RS256"], "enc"), "use": "enc"}]}, "no key for the allowed algorithms"),
    ({"keys": [{"kty": "RSA", "n": "broken"}]}, "no key for the allowed algorithms"),
    ({"keys": [{**jwk(KEYS["EdDSA"], "e"), "d": "c2VjcmV0"}]}, "private key"),
])
def test_unusable_jwks_files(tmp_path, document, problem):
    path = write(tmp_path, "jwks.json", document)
    with pytest.raises(TokenConfigError, match=problem) as info:
        TokenVerifier(JwtConfig(audience=AUDIENCE, jwks_file=path))
    assert str(path) in str(info.value)


def test_a_jwk_alg_narrows_what_its_key_verifies(tmp_path):
    path = write(tmp_path, "jwks.json", {"keys": [jwk(KEYS["RS256"], "r", alg="PS256")]})
    verifier = TokenVerifier(JwtConfig(audience=AUDIENCE, algorithms=("RS256", "PS256"), jwks_file=path))
    assert verifier.verify(token(KEYS["RS256"], "PS256", kid="r"), now=NOW).name == "alice"
    rejected(verifier, token(KEYS["RS256"], "RS256", kid="r"), "unknown key")
