"""The identity parts of wireproxy.toml: `[[user]]`, `[jwt]`, and a [[postgres]] listener's
TLS and held upstream credentials. Errors name the file, the line and the key (ConfigError).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..auth import Directory, JwtConfig, UserEntry
from ..auth.scram import parse_verifier
from .tomlfile import Checker

SSLMODES = ("disable", "require", "verify-full")
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def load_directory(top: Checker, base: Path) -> Directory:
    users: list[UserEntry] = []
    for i, table in enumerate(top.get("user", list, [])):
        if not isinstance(table, dict):
            raise top.error("user", "user must be written as [[user]] tables")
        c = Checker(top.file, ("user", i), table)
        name = c.get("name", str, required=True)
        if not name or name != name.strip() or any(u.name == name for u in users):
            raise c.error("name", f"{c.name('name')}: {name!r} is empty, padded or used twice")
        scram = c.get("scram", str, required=True)
        try:
            parse_verifier(scram)
        except ValueError as exc:           # the reason never quotes the verifier's keys
            raise c.error("scram", f"{c.name('scram')}: {exc} (make one with: wireproxy users add NAME)") from None
        users.append(UserEntry(name=name, scram=scram, groups=tuple(c.get_list("groups", str))))
        c.done()
    jwt = None
    if top.has("jwt"):
        top.get("jwt", dict)
        jwt = _jwt(Checker(top.file, ("jwt",)), base)
    return Directory(users=tuple(users), jwt=jwt)


def _jwt(c: Checker, base: Path) -> JwtConfig:
    jwks = c.get("jwks_file", str)
    keys = c.get_list("key_files", str)
    if (jwks is None) == (not keys):
        raise c.error("jwks_file", "jwt needs jwks_file or key_files (one of them)")
    algorithms = c.get_list("algorithms", str) or ["RS256", "ES256", "EdDSA"]
    for name in algorithms:
        if name not in JWT_ALGORITHMS:
            raise c.error("algorithms", f"jwt.algorithms: {name!r} is not one of {', '.join(JWT_ALGORITHMS)}")
    leeway = float(c.get("leeway", (int, float), 30.0))
    if leeway < 0:
        raise c.error("leeway", "jwt.leeway must not be negative")
    config = JwtConfig(
        audience=c.get("audience", str, required=True), issuer=c.get("issuer", str),
        jwks_file=_path(base, jwks), key_files=tuple(_path(base, k) for k in keys),
        algorithms=tuple(algorithms), subject_claim=c.get("subject_claim", str, "sub"),
        groups_claim=c.get("groups_claim", str, "groups"), leeway=leeway)
    c.done()
    return config


def postgres_identity(c: Checker, base: Path, listener, directory: Directory) -> None:
    """TLS and held credentials of one [[postgres]] listener, checked against the directory."""
    listener.tls_cert = _path(base, c.get("tls_cert", str))
    listener.tls_key = _path(base, c.get("tls_key", str))
    if (listener.tls_cert is None) != (listener.tls_key is None):
        raise c.error("tls_key" if listener.tls_key is None else "tls_cert", "tls_cert and tls_key go together")
    listener.require_tls = c.get("require_tls", bool, False)
    if listener.require_tls and listener.tls_cert is None:
        raise c.error("require_tls", "require_tls needs tls_cert and tls_key")
    listener.upstream_sslmode = c.choice("upstream_sslmode", SSLMODES, "disable")
    listener.upstream_ca = _path(base, c.get("upstream_ca", str))
    if listener.upstream_ca is not None and listener.upstream_sslmode != "verify-full":
        raise c.error("upstream_ca", 'upstream_ca is used with upstream_sslmode = "verify-full"')
    listener.upstream_user = c.get("upstream_user", str)
    listener.upstream_password_env = c.get("upstream_password_env", str)
    listener.upstream_password_file = _path(base, c.get("upstream_password_file", str))
    if listener.upstream_password_env is not None and not _ENV_NAME.match(listener.upstream_password_env):
        raise c.error("upstream_password_env", "upstream_password_env must name an environment variable")
    if listener.upstream_password_env is not None and listener.upstream_password_file is not None:
        raise c.error("upstream_password_file", "upstream_password_env or upstream_password_file, not both")
    roles = c.get("upstream_roles", dict, {})
    for key, role in roles.items():
        if not isinstance(role, str) or not role or not key:
            raise c.error("upstream_roles", f"upstream_roles: {key!r} must map to a role name")
    listener.upstream_roles = dict(roles)
    methods = c.get_list("login", str) or ["scram", "jwt"]
    for method in methods:
        if method not in ("scram", "jwt"):
            raise c.error("login", f'login: {method!r} is not "scram" or "jwt"')
    if "login" in c.table and "jwt" in methods and directory.jwt is None:
        raise c.error("login", 'login = ["jwt"] needs a [jwt] table')
    if "login" in c.table and methods == ["scram"] and not directory.users:
        raise c.error("login", 'login = ["scram"] needs [[user]] entries')
    listener.login_methods = tuple(methods)
    if listener.holds_credentials and not directory.terminates:
        raise c.error("upstream_user" if listener.upstream_user else "upstream_roles",
                      "held upstream credentials need [[user]] entries or [jwt]: "
                      "clients must prove who they are before wireproxy logs in for them")
    if directory.terminates and not listener.holds_credentials:
        raise c.error(None, "with [[user]] or [jwt], a [[postgres]] listener needs upstream_user "
                            "(or upstream_roles): the credentials wireproxy logs in upstream with")


def _path(base: Path, text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path
