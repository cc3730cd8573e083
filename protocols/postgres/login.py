"""Logging in to a PostgreSQL server with a password, sans-I/O: the client's answers to the
server's Authentication requests (cleartext, md5, SCRAM-SHA-256).

    login = PasswordLogin(user, password)
    for each Authentication message from the server:
        reply = login.answer(message)       # bytes to send, or b"" (nothing to send)
        if login.done: ...                  # AuthenticationOk arrived

LoginError says why it cannot go on (no password held, an unsupported method, a server that
failed to prove it knows the verifier). Its message never holds the password.
"""

from __future__ import annotations

import hashlib

from .backend import (
    AUTH_CLEARTEXT,
    AUTH_MD5,
    AUTH_OK,
    AUTH_SASL,
    AUTH_SASL_CONTINUE,
    AUTH_SASL_FINAL,
    Authentication,
)
from .frontend import PasswordMessage, SASLInitialResponse, SASLResponse
from .scram import MECHANISM, ScramClient, ScramError

_METHOD_NAMES = {2: "Kerberos", 6: "SCM credentials", 7: "GSSAPI", 8: "GSSAPI", 9: "SSPI"}


class LoginError(Exception):
    """The login cannot succeed from our side; the message is safe to log."""


class PasswordLogin:
    def __init__(self, user: str, password: str | None):
        self.user = user
        self._password = password
        self._scram: ScramClient | None = None
        self.done = False
        self.method = "trust"

    def answer(self, auth: Authentication) -> bytes:
        code = auth.code
        if code == AUTH_OK:
            if self._scram is not None and self.method != "scram-sha-256 (verified)":
                raise LoginError("the server accepted SCRAM without proving it knows the verifier")
            self.done = True
            return b""
        if code in (AUTH_CLEARTEXT, AUTH_MD5, AUTH_SASL) and self._password is None:
            raise LoginError(f"the server asks for a password for role {self.user!r} and none was given")
        if code == AUTH_CLEARTEXT:
            self.method = "password"
            return PasswordMessage(self._password.encode("utf-8") + b"\0").encode()
        if code == AUTH_MD5:
            self.method = "md5"
            inner = hashlib.md5((self._password + self.user).encode("utf-8")).hexdigest()
            outer = hashlib.md5(inner.encode("ascii") + auth.data).hexdigest()
            return PasswordMessage(b"md5" + outer.encode("ascii") + b"\0").encode()
        if code == AUTH_SASL:
            if MECHANISM not in auth.mechanisms:
                raise LoginError(f"no supported SASL mechanism in {auth.mechanisms}")
            self.method = "scram-sha-256"
            self._scram = ScramClient(self._password)
            return SASLInitialResponse(MECHANISM, self._scram.first_message()).encode()
        if code in (AUTH_SASL_CONTINUE, AUTH_SASL_FINAL) and self._scram is not None:
            try:
                if code == AUTH_SASL_CONTINUE:
                    return SASLResponse(self._scram.final_message(auth.data)).encode()
                self._scram.verify_server(auth.data)
            except ScramError as exc:
                raise LoginError(f"SCRAM authentication failed: {exc}") from None
            self.method = "scram-sha-256 (verified)"
            return b""
        raise LoginError(f"unsupported authentication method {_METHOD_NAMES.get(code, code)}")
