"""SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, sans-I/O: the client side.

    scram = ScramClient(password)
    send SASLInitialResponse("SCRAM-SHA-256", scram.first_message())
    send SASLResponse(scram.final_message(server_first))      # AuthenticationSASLContinue data
    scram.verify_server(server_final)                         # AuthenticationSASLFinal data

No channel binding (the gs2 header is "n,,"), so only the SCRAM-SHA-256 mechanism, not -PLUS.
PostgreSQL ignores the SCRAM user name (the startup packet names the user) and sends an empty
one; the password is SASLprep-normalized when it can be and used as raw UTF-8 when it cannot,
as libpq and the server both do. The key derivation (`derive_keys`) is shared with a server side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from dataclasses import dataclass

MECHANISM = "SCRAM-SHA-256"
GS2_HEADER = b"n,,"
MAX_ITERATIONS = 10_000_000      # a hostile server must not make us burn minutes of CPU


class ScramError(Exception):
    """The server's SCRAM messages are malformed, or it failed to prove it knows the password."""


@dataclass(frozen=True, slots=True)
class ScramKeys:
    salted_password: bytes
    client_key: bytes
    stored_key: bytes
    server_key: bytes


def derive_keys(password: str | bytes, salt: bytes, iterations: int) -> ScramKeys:
    salted = hashlib.pbkdf2_hmac("sha256", normalize_password(password), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return ScramKeys(salted, client_key, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key"))


def normalize_password(password: str | bytes) -> bytes:
    """SASLprep (RFC 4013) of the password, or its raw bytes when that is not possible."""
    if isinstance(password, bytes):
        try:
            password = password.decode("utf-8")
        except UnicodeDecodeError:
            return password
    if password.isascii():                  # PostgreSQL's pg_saslprep leaves ASCII untouched
        return password.encode("ascii")
    prepared = saslprep(password)
    return (prepared if prepared is not None else password).encode("utf-8", "surrogateescape")


def saslprep(text: str) -> str | None:
    """RFC 4013 stringprep profile, for stored strings; None when the text is prohibited.

    As PostgreSQL's pg_saslprep (src/common/saslprep.c) does it, so both sides of a SCRAM
    exchange derive the same keys: a text mapped to nothing is prohibited, and the prohibited
    and bidi checks look at the mapped text before NFKC, not at its normalized form."""
    mapped = "".join(" " if stringprep.in_table_c12(ch) else ch
                     for ch in text if not stringprep.in_table_b1(ch))
    if not mapped:
        return None
    prohibited = (stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
                  stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7,
                  stringprep.in_table_c8, stringprep.in_table_c9, stringprep.in_table_a1)
    if any(check(ch) for ch in mapped for check in prohibited):
        return None
    if any(stringprep.in_table_d1(ch) for ch in mapped):       # right-to-left text: RFC 3454 6
        if any(stringprep.in_table_d2(ch) for ch in mapped):
            return None
        if not (stringprep.in_table_d1(mapped[0]) and stringprep.in_table_d1(mapped[-1])):
            return None
    return unicodedata.normalize("NFKC", mapped)


class ScramClient:
    def __init__(self, password: str | bytes, *, username: str = "", nonce: str | None = None):
        self._password = password
        self._nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode("ascii")
        name = username.replace("=", "=3D").replace(",", "=2C")
        self._first_bare = f"n={name},r={self._nonce}".encode()
        self._auth_message: bytes | None = None
        self._server_key: bytes | None = None

    def first_message(self) -> bytes:
        return GS2_HEADER + self._first_bare

    def final_message(self, server_first: bytes) -> bytes:
        attrs = _attributes(server_first, "server-first-message")
        if "m" in attrs:
            raise ScramError("server-first-message asks for an unsupported SCRAM extension")
        nonce, salt_text, iterations_text = (attrs.get(k) for k in ("r", "s", "i"))
        if nonce is None or salt_text is None or iterations_text is None:
            raise ScramError("server-first-message lacks its nonce, salt or iteration count")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise ScramError("server nonce does not extend the client nonce")
        if not iterations_text.isascii() or not iterations_text.isdigit():
            raise ScramError(f"server iteration count {iterations_text!r} is not a number")
        iterations = int(iterations_text)
        if not 1 <= iterations <= MAX_ITERATIONS:
            raise ScramError(f"server iteration count {iterations} is out of bounds")
        try:
            salt = base64.b64decode(salt_text, validate=True)
        except ValueError:
            raise ScramError("server salt is not base64") from None
        keys = derive_keys(self._password, salt, iterations)
        without_proof = b"c=" + base64.b64encode(GS2_HEADER) + b",r=" + nonce.encode("ascii")
        self._auth_message = self._first_bare + b"," + server_first + b"," + without_proof
        signature = _hmac(keys.stored_key, self._auth_message)
        proof = bytes(a ^ b for a, b in zip(keys.client_key, signature))
        self._server_key = keys.server_key
        return without_proof + b",p=" + base64.b64encode(proof)

    def verify_server(self, server_final: bytes) -> None:
        """Raises ScramError unless the server proved it holds the password's verifier."""
        if self._auth_message is None or self._server_key is None:
            raise ScramError("server-final-message before server-first-message")
        attrs = _attributes(server_final, "server-final-message")
        if "e" in attrs:
            raise ScramError(f"server reports a SCRAM error: {attrs['e']}")
        try:
            got = base64.b64decode(attrs.get("v", ""), validate=True)
        except ValueError:
            raise ScramError("server signature is not base64") from None
        expected = _hmac(self._server_key, self._auth_message)
        if not got or not hmac.compare_digest(got, expected):
            raise ScramError("the server's signature is wrong: it does not know the password")


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _attributes(message: bytes, what: str) -> dict[str, str]:
    try:
        text = message.decode("ascii")
    except UnicodeDecodeError:
        raise ScramError(f"{what} is not ASCII") from None
    attrs: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or len(name) != 1 or name in attrs:
            raise ScramError(f"{what} is malformed")
        attrs[name] = value
    return attrs
