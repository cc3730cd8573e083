"""[[user]], [jwt] and a [[postgres]] listener's TLS and held credentials: values, and the
combinations refused because they would fail open or cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from wireproxy.auth.scram import make_verifier
from wireproxy.config import Config, ConfigError, load_config

USER = f'[[user]]\nname = "alice"\ngroups = ["oncall"]\nscram = "{make_verifier("pw", iterations=64)}"\n'
JWT = '[jwt]\naudience = "db"\nkey_files = ["idp.pem"]\n'
LISTENER = '[[postgres]]\nlisten = "127.0.0.1:6432"\nupstream = "db.internal:5432"\n'


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "wireproxy.toml"
    path.write_text(text)
    return load_config(path)


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_every_key(tmp_path):
    config = load(tmp_path, USER + JWT + LISTENER + """
tls_cert = "server.crt"
tls_key = "server.key"
require_tls = true
upstream_sslmode = "verify-full"
upstream_ca = "db-ca.crt"
upstream_user = "app"
upstream_password_file = "upstream.pw"
upstream_roles = { "group:oncall" = "app_admin" }
login = ["scram"]
""")
    listener = config.postgres[0]
    assert (listener.tls_cert, listener.tls_key) == (tmp_path / "server.crt", tmp_path / "server.key")
    assert listener.require_tls and listener.upstream_sslmode == "verify-full"
    assert listener.upstream_ca == tmp_path / "db-ca.crt"
    assert (listener.upstream_user, listener.upstream_password_file) == ("app", tmp_path / "upstream.pw")
    assert listener.upstream_roles == {"group:oncall": "app_admin"}
    assert listener.login_methods == ("scram",)
    assert config.directory.groups_of("alice") == frozenset({"oncall"})
    assert config.directory.jwt.key_files == (tmp_path / "idp.pem",)


def test_passthrough_stays_the_default(tmp_path):
    listener = load(tmp_path, LISTENER).postgres[0]
    assert not load(tmp_path, LISTENER).directory.terminates
    assert (listener.upstream_sslmode, listener.require_tls, listener.holds_credentials) == ("disable", False, False)


@pytest.mark.parametrize("text, problem", [
    (LISTENER + 'upstream_user = "app"\n', "held upstream credentials need [[user]] entries or [jwt]"),
    (USER + LISTENER, "needs upstream_user"),
    (USER + LISTENER + 'upstream_user = "app"\nrequire_tls = true\n', "require_tls needs tls_cert"),
    (USER + LISTENER + 'upstream_user = "app"\ntls_cert = "a.crt"\n', "tls_cert and tls_key go together"),
    (USER + LISTENER + 'upstream_user = "app"\nupstream_ca = "ca.crt"\n', 'upstream_sslmode = "verify-full"'),
    (USER + LISTENER + 'upstream_user = "app"\nupstream_sslmode = "prefer"\n', "upstream_sslmode"),
    (USER + LISTENER + 'upstream_user = "app"\nupstream_password_env = "A"\nupstream_password_file = "f"\n',
     "not both"),
    (USER + LISTENER + 'upstream_user = "app"\nupstream_password_env = "not a name"\n', "environment variable"),
    (USER + LISTENER + 'upstream_user = "app"\nlogin = ["jwt"]\n', "needs a [jwt] table"),
    (USER + LISTENER + 'upstream_user = "app"\nlogin = ["kerberos"]\n', "is not"),
    (JWT + LISTENER + 'upstream_user = "app"\nlogin = ["scram"]\n', "needs [[user]] entries"),
    ('[jwt]\nkey_files = ["k.pem"]\n' + LISTENER, "audience"),
    ('[jwt]\naudience = "db"\n' + LISTENER, "jwks_file or key_files"),
    ('[[user]]\nname = "alice"\nscram = "SCRAM-SHA-256$4096:AAAA$AAAA:AAAA"\n' + LISTENER, "user[0].scram"),
    (USER + USER + LISTENER, "used twice"),
])
def test_refused_with_one_line_naming_the_problem(tmp_path, text, problem):
    message = refused(tmp_path, text)
    assert problem in message and "\n" not in message
    assert str(tmp_path / "wireproxy.toml") in message
