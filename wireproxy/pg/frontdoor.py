"""The client's login to wireproxy, sans-I/O: SCRAM-SHA-256 against a `[[user]]` verifier, or a
JWT sent as the password.

    login = FrontLogin(startup.user, access)
    send login.begin()                        # the Authentication request
    for each 'p' message: send login.receive(message)
    login.identity                            # set once the client proved who it is
    login.failure                             # set when it did not: why, for our log only

Which way a user logs in follows from the directory and the listener's `login` methods: a name
with a `[[user]]` entry uses SCRAM; any other name uses a JWT when tokens are accepted, else
SCRAM against a mock verifier, which fails at the end like a wrong password. (With both methods
on one listener, the method asked for tells whether a name has an entry: give people and
workloads listeners of their own, `login = ["scram"]` and `login = ["jwt"]`, to hide that.)
Whatever went wrong, the client is told the same thing (SQLSTATE 28P01).
"""

from __future__ import annotations

from protocols.postgres import Authentication, ProtocolError, RemoteProtocolError, SASLInitialResponse
from protocols.postgres.backend import AUTH_CLEARTEXT, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL

from ..auth import Identity
from ..auth.scram import ScramRejected, ScramServer

MECHANISM = "SCRAM-SHA-256"
PASSWORD = ord("p")


def uniform_failure(user: str) -> str:
    return f'password authentication failed for user "{user}"'


class FrontLogin:
    def __init__(self, user: str, directory, verifiers: dict, tokens, mock_secret: bytes,
                 mock_iterations: int, *, scram: bool = True):
        self.user = user
        self.identity: Identity | None = None
        self.failure: str | None = None
        entry = directory.by_name.get(user) if scram else None
        self.method = "scram" if tokens is None or (scram and entry is not None) else "jwt"
        self._entry = entry
        self._tokens = tokens
        self._scram: ScramServer | None = None
        if self.method == "scram":
            self._scram = ScramServer(verifiers.get(user) if entry is not None else None, mock_secret=mock_secret, username=user,
                                      mock_iterations=mock_iterations)
        self._step = 0
        self.started = False              # the request is out (the pump sets it, after any wait)

    @property
    def failure_message(self) -> str:
        """What the client is told, whatever the reason."""
        return uniform_failure(self.user)

    def begin(self) -> bytes:
        if self.method == "scram":
            return Authentication.sasl([MECHANISM]).encode()
        return Authentication(AUTH_CLEARTEXT).encode()

    def receive(self, code: int, message: bytes) -> bytes:
        """One client message during the login -> what to answer (b"" when it is over)."""
        if code != PASSWORD:
            raise RemoteProtocolError(f"expected a password response, got message type {chr(code)!r}")
        body = message[5:]
        if self.method == "jwt":
            return self._token(body)
        try:
            if self._step == 0:
                self._step = 1
                initial = SASLInitialResponse.decode(body)
                if initial.mechanism != MECHANISM or initial.data is None:
                    return self._fail(f"SASL mechanism {initial.mechanism!r} not offered")
                return Authentication(AUTH_SASL_CONTINUE, self._scram.first(initial.data)).encode()
            if self._step == 1:
                self._step = 2
                final = self._scram.final(bytes(body))
                if self._entry is None:                     # a mock exchange cannot succeed
                    return self._fail("no such user")
                self.identity = Identity(self.user, frozenset(self._entry.groups), "scram")
                return Authentication(AUTH_SASL_FINAL, final).encode()
        except ScramRejected as exc:
            return self._fail(f"SCRAM: {exc}")
        except ProtocolError as exc:
            return self._fail(f"SCRAM: malformed message: {exc}")
        raise RemoteProtocolError("password response after the login ended")

    def _token(self, body: bytes) -> bytes:
        from ..auth.tokens import TokenRejected
        if self._step:
            raise RemoteProtocolError("password response after the login ended")
        self._step = 1
        text = body[:-1] if body.endswith(b"\0") else body
        try:
            token = text.decode("ascii")
        except UnicodeDecodeError:
            return self._fail("JWT: not a token")
        try:
            self.identity = self._tokens.verify(token)
        except TokenRejected as exc:
            return self._fail(f"JWT: {getattr(exc, 'reason', exc)}")
        return b""

    def _fail(self, reason: str) -> bytes:
        self.failure = reason
        return b""
