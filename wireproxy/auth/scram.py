"""The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL's auth-scram.c does it,
sans-I/O: one object per exchange, fed the client's SASL data, handing back the server's.

    server = ScramServer(verifier, mock_secret=secret, username=startup_user)
    send AuthenticationSASLContinue(server.first(sasl_initial_response.data))
    send AuthenticationSASLFinal(server.final(sasl_response.data))
    # ScramRejected from either call: answer 28P01, log the exception's reason, never send it

Like PostgreSQL: the SCRAM user name is ignored (the startup packet names the user); no
channel binding is offered, so gs2 "n,," and "y,," are accepted and "p=..." is refused; an
unknown user (verifier None) gets a mock salt derived from a secret and the user name, so the
exchange looks the same and fails only at the proof, after the same amount of work.

Verifiers are PostgreSQL's text, `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` (base64),
with the password SASLprepped as pg_saslprep does (raw bytes when it cannot be).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from protocols.postgres.scram import MAX_ITERATIONS, MECHANISM, derive_keys

ITERATIONS = 4096               # PostgreSQL's scram_iterations default
SALT_LENGTH = 16                # PostgreSQL's SCRAM_DEFAULT_SALT_LEN
KEY_LENGTH = 32                 # SHA-256
NONCE_LENGTH = 18               # raw bytes of our nonce part, as PostgreSQL's SCRAM_RAW_NONCE_LEN
MAX_MESSAGE = 4096              # real clients send under 200 bytes; we echo the client nonce
MIN_MOCK_SECRET = 16


class ScramRejected(Exception):
    """The exchange failed. The message is a reason for our log; the client only gets 28P01."""


@dataclass(frozen=True)
class Verifier:
    """What a server keeps of a password: enough to check a proof, not to make one."""
    iterations: int
    salt: bytes
    stored_key: bytes = field(repr=False)       # keys stay out of reprs, so out of logs
    server_key: bytes = field(repr=False)

    def __str__(self) -> str:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")
        return (f"{MECHANISM}${self.iterations}:{b64(self.salt)}"
                f"${b64(self.stored_key)}:{b64(self.server_key)}")


def make_verifier(password: str | bytes, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """PostgreSQL's verifier text for a password (what `ALTER ROLE ... PASSWORD` would store)."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"the iteration count must be between 1 and {MAX_ITERATIONS}")
    salt = secrets.token_bytes(SALT_LENGTH) if salt is None else salt
    if not salt:
        raise ValueError("the salt must not be empty")
    keys = derive_keys(password, salt, iterations)
    return str(Verifier(iterations, salt, keys.stored_key, keys.server_key))


def parse_verifier(text: str) -> Verifier:
    """The parts of a verifier's text; ValueError with a plain reason (never the text itself)."""
    parts = text.split("$")
    if len(parts) != 3 or parts[0] != MECHANISM:
        raise ValueError(f"not a {MECHANISM} verifier (expected {MECHANISM}$<iterations>:<salt>"
                         "$<StoredKey>:<ServerKey>)")
    iterations_text, sep1, salt_text = parts[1].partition(":")
    stored_text, sep2, server_text = parts[2].partition(":")
    if not sep1 or not sep2:
        raise ValueError("the verifier lacks a ':' between iterations and salt or between its keys")
    if not (iterations_text.isascii() and iterations_text.isdigit()):
        raise ValueError("the verifier's iteration count is not a number")
    iterations = int(iterations_text)
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"the verifier's iteration count is not between 1 and {MAX_ITERATIONS}")
    salt = _b64(salt_text, "salt")
    if not salt:
        raise ValueError("the verifier's salt is empty")
    stored_key, server_key = _b64(stored_text, "StoredKey"), _b64(server_text, "ServerKey")
    if len(stored_key) != KEY_LENGTH or len(server_key) != KEY_LENGTH:
        raise ValueError(f"the verifier's keys are not {KEY_LENGTH} bytes each")
    return Verifier(iterations, salt, stored_key, server_key)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError(f"the verifier's {what} is not base64") from None


class _State(enum.Enum):
    EXPECT_FIRST = "expect client-first-message"
    EXPECT_FINAL = "expect client-final-message"
    DONE = "done"
    FAILED = "failed"


class ScramServer:
    """One SCRAM-SHA-256 exchange, server side. After a ScramRejected every call raises again."""

    def __init__(self, verifier: Verifier | None, *, mock_secret: bytes, username: str,
                 nonce: bytes | None = None, mock_iterations: int = ITERATIONS):
        """`nonce`: our part of the nonce (printable ASCII), for tests; random by default.
        `mock_iterations`: what an unknown user is offered; pass the count real users have,
        or the iteration count alone tells that a user does not exist."""
        if len(mock_secret) < MIN_MOCK_SECRET:
            raise ValueError(f"mock_secret must be at least {MIN_MOCK_SECRET} bytes")
        if not 1 <= mock_iterations <= MAX_ITERATIONS:
            raise ValueError(f"mock_iterations must be between 1 and {MAX_ITERATIONS}")
        if nonce is None:
            nonce = base64.b64encode(secrets.token_bytes(NONCE_LENGTH))
        if not nonce or not _printable(nonce):
            raise ValueError("the server nonce must be printable ASCII without ','")
        self._doomed = verifier is None
        if verifier is None:
            verifier = _mock_verifier(mock_secret, username, mock_iterations)
        self._verifier = verifier
        self._server_nonce = nonce
        self._state = _State.EXPECT_FIRST
        self._gs2_header = b""
        self._nonce = b""
        self._first_bare = b""
        self._server_first = b""

    @property
    def done(self) -> bool:
        """The client proved it knows the password (final() returned)."""
        return self._state is _State.DONE

    def first(self, client_first: bytes) -> bytes:
        """The data of SASLInitialResponse -> the server-first-message."""
        self._expect(_State.EXPECT_FIRST)
        try:
            self._gs2_header, self._first_bare, client_nonce = _read_client_first(client_first)
        except ScramRejected:
            self._state = _State.FAILED
            raise
        self._nonce = client_nonce + self._server_nonce
        salt = base64.b64encode(self._verifier.salt)
        self._server_first = b"r=%s,s=%s,i=%d" % (self._nonce, salt, self._verifier.iterations)
        self._state = _State.EXPECT_FINAL
        return self._server_first

    def final(self, client_final: bytes) -> bytes:
        """The data of SASLResponse -> the server-final-message (b"v=...")."""
        self._expect(_State.EXPECT_FINAL)
        self._state = _State.FAILED                 # until the proof says otherwise
        without_proof, proof = _read_client_final(client_final, self._gs2_header, self._nonce)
        auth_message = b",".join((self._first_bare, self._server_first, without_proof))
        # The proof is checked even for a doomed (mock) exchange: the same work either way.
        signature = _hmac(self._verifier.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        proven = hmac.compare_digest(hashlib.sha256(client_key).digest(), self._verifier.stored_key)
        if self._doomed:
            raise ScramRejected("no such user (mock authentication)")
        if not proven:
            raise ScramRejected("wrong password (the client proof does not match)")
        self._state = _State.DONE
        return b"v=" + base64.b64encode(_hmac(self._verifier.server_key, auth_message))

    def _expect(self, state: _State) -> None:
        if self._state is not state:
            current, self._state = self._state, _State.FAILED
            raise ScramRejected(f"SCRAM message out of order (the exchange is {current.value})")


def _mock_verifier(secret: bytes, username: str, iterations: int) -> Verifier:
    # PostgreSQL's scram_mock_salt: the same user name always gets the same salt, so probing
    # twice does not tell a mock from a real user. The keys are random: no proof can match.
    digest = _hmac(secret, username.encode("utf-8", "surrogateescape"))
    return Verifier(iterations, digest[:SALT_LENGTH], secrets.token_bytes(KEY_LENGTH),
                    secrets.token_bytes(KEY_LENGTH))


def _read_client_first(message: bytes) -> tuple[bytes, bytes, bytes]:
    """(gs2 header, client-first-message-bare, client nonce) of a client-first-message."""
    message = _checked(message, "client-first-message")
    flag, comma, rest = message[:1], message[1:2], message[2:]
    if flag == b"p":
        raise ScramRejected("the client requires channel binding, which is not offered")
    if flag not in (b"n", b"y") or comma != b",":
        raise ScramRejected("malformed client-first-message (bad gs2 header)")
    if rest.startswith(b"a="):
        raise ScramRejected("the client sent an authorization identity, which is not supported")
    if not rest.startswith(b","):
        raise ScramRejected("malformed client-first-message (bad gs2 header)")
    bare = rest[1:]
    attrs = _attributes(bare, "client-first-message")
    if attrs and attrs[0][0] == b"m":
        raise ScramRejected("the client requires an unsupported SCRAM extension")
    if len(attrs) < 2 or attrs[0][0] != b"n" or attrs[1][0] != b"r":
        raise ScramRejected("malformed client-first-message (expected n=...,r=...)")
    nonce = attrs[1][1]
    if not nonce or not _printable(nonce):
        raise ScramRejected("malformed client-first-message (the nonce is empty or not printable)")
    return flag + b",,", bare, nonce


def _read_client_final(message: bytes, gs2_header: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    """(client-final-message-without-proof, proof) of a client-final-message, checked."""
    message = _checked(message, "client-final-message")
    attrs = _attributes(message, "client-final-message")
    if len(attrs) < 3 or attrs[0][0] != b"c" or attrs[1][0] != b"r" or attrs[-1][0] != b"p":
        raise ScramRejected("malformed client-final-message (expected c=...,r=...,...,p=...)")
    if any(name == b"p" for name, _ in attrs[:-1]):
        raise ScramRejected("malformed client-final-message (the proof is not last)")
    if attrs[0][1] != base64.b64encode(gs2_header):
        raise ScramRejected("unexpected channel binding data in client-final-message")
    if not hmac.compare_digest(attrs[1][1], nonce):
        raise ScramRejected("nonce mismatch in client-final-message")
    try:
        proof = base64.b64decode(attrs[-1][1], validate=True)
    except binascii.Error:
        raise ScramRejected("malformed client-final-message (the proof is not base64)") from None
    if base64.b64encode(proof) != attrs[-1][1]:     # unused low bits set: one proof, one spelling
        raise ScramRejected("malformed client-final-message (the proof is not canonical base64)")
    if len(proof) != KEY_LENGTH:
        raise ScramRejected(f"malformed client-final-message (the proof is not {KEY_LENGTH} bytes)")
    return message[:message.rindex(b",p=")], proof


def _checked(message: bytes, what: str) -> bytes:
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise ScramRejected(f"{what} is not bytes")
    message = bytes(message)
    if not message:
        raise ScramRejected(f"empty {what}")
    if len(message) > MAX_MESSAGE:
        raise ScramRejected(f"{what} longer than {MAX_MESSAGE} bytes")
    if b"\0" in message:
        raise ScramRejected(f"{what} contains a NUL byte")
    return message


def _attributes(message: bytes, what: str) -> list[tuple[bytes, bytes]]:
    """`a=value,b=value`: names are one ASCII letter; values may be empty but not missing."""
    attrs = []
    for part in message.split(b","):
        name, sep, value = part[:1], part[1:2], part[2:]
        if sep != b"=" or not (name.isascii() and name.isalpha()):
            raise ScramRejected(f"malformed {what} (attribute expected)")
        attrs.append((name, value))
    return attrs


def _printable(value: bytes) -> bool:
    return all(0x21 <= byte <= 0x7E and byte != 0x2C for byte in value)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()
