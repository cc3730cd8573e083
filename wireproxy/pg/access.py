"""Who may log in on a [[postgres]] listener, and as whom wireproxy logs in upstream.

One Access per listener, shared by its sessions: the directory (`[[user]]`, `[jwt]`), the JWT
verifier, the per-address limiter, and the held upstream credentials. A listener has one only
when the config has `[[user]]` or `[jwt]`; without, authentication passes through untouched.

The upstream role follows the identity: `upstream_roles` maps a user name, or "group:NAME",
to a role (a user's own entry first, then the first of its groups in the table's order), and
any other identity logs in as `upstream_user`. The password is read when a session logs in
(the environment variable, or the file, whose first line it is), so a rotated file needs no
reload; it is never logged.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import asynccontextmanager

import trio

from ..auth import Directory, Identity
from ..auth.scram import ITERATIONS, parse_verifier
from .frontdoor import FrontLogin

GROUP_PREFIX = "group:"


class NoUpstreamRole(Exception):
    """No role is mapped for this identity and no upstream_user is set."""


class CredentialsUnavailable(Exception):
    """The held password cannot be read; the message names its source, never its value."""


class Access:
    def __init__(self, listener, directory: Directory, *, limiter, tokens=None):
        self.listener = listener
        self.directory = directory
        self.tokens = tokens                            # auth.tokens.TokenVerifier, for [jwt]
        self.limiter = limiter                          # auth.limiter.LoginLimiter, shared
        self._verifiers = {u.name: parse_verifier(u.scram) for u in directory.users}   # parsed once
        verifiers = list(self._verifiers.values())
        # An unknown name gets a mock exchange whose salt must not change across restarts (a
        # real user's does not): derive its secret from the real verifiers' secret keys.
        self._mock_secret = hashlib.sha256(b"wireproxy mock SCRAM\0" + b"".join(
            v.stored_key + v.server_key for v in verifiers)).digest()
        counts = [v.iterations for v in verifiers]        # nor its iteration count
        self._mock_iterations = max(set(counts), key=counts.count) if counts else ITERATIONS
        self._gates: dict[str, trio.Lock] = {}

    def login(self, user: str) -> FrontLogin:
        methods = self.listener.login_methods
        tokens = self.tokens if "jwt" in methods else None
        return FrontLogin(user, self.directory, self._verifiers, tokens, self._mock_secret,
                          self._mock_iterations, scram="scram" in methods)

    @asynccontextmanager
    async def gate(self, host: str):
        """While an address is throttled, its logins go one at a time (after their wait), so
        parallel connections do not multiply a guesser's attempts."""
        delay = self.limiter.delay(host)
        if delay <= 0:
            yield 0.0
            return
        lock = self._gates.setdefault(host, trio.Lock())
        try:
            async with lock:
                await trio.sleep(delay)
                yield delay
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._gates.pop(host, None)

    def upstream_role(self, identity: Identity) -> str:
        roles = self.listener.upstream_roles
        role = roles.get(identity.name)
        if role is None:
            role = next((r for key, r in roles.items()
                         if key.startswith(GROUP_PREFIX) and key[len(GROUP_PREFIX):] in identity.groups), None)
        role = role or self.listener.upstream_user
        if role is None:
            raise NoUpstreamRole(f"no upstream role for {identity.name!r} (upstream_roles, upstream_user)")
        return role

    def upstream_password(self) -> str | None:
        listener = self.listener
        if listener.upstream_password_env is not None:
            value = os.environ.get(listener.upstream_password_env)
            if not value:
                raise CredentialsUnavailable(f"environment variable {listener.upstream_password_env} is not set")
            return value
        if listener.upstream_password_file is not None:
            try:
                text = listener.upstream_password_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise CredentialsUnavailable(
                    f"cannot read {listener.upstream_password_file}: {exc.strerror or 'unreadable'}") from None
            value = text.splitlines()[0] if text else ""
            if not value:
                raise CredentialsUnavailable(f"{listener.upstream_password_file} is empty")
            return value
        return None
