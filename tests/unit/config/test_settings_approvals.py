"""[admin] and [approvals] in wireproxy.toml: values, defaults, and where the token file goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from wireproxy.config import Config, ConfigError, load_config


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "wireproxy.toml"
    path.write_text(text)
    return load_config(path)


def test_every_key(tmp_path):
    config = load(tmp_path, """
[admin]
listen = "127.0.0.1:6480"
token_file = "secrets/admin.token"
url = "https://wireproxy.internal/"

[approvals]
store = "postgres"
dsn = "postgresql://wireproxy@db.internal:5432/wireproxy"
password_env = "WIREPROXY_APPROVALS_PASSWORD"
table = "jit_approvals"
timeout = "10m"
notice_interval = 5
max_window = "8h"
webhook = "https://hooks.example.com/approvals"
webhook_timeout = 2.5
webhook_retries = 0
""")
    a = config.approvals
    assert (a.store, a.dsn, a.password_env, a.table) == (
        "postgres", "postgresql://wireproxy@db.internal:5432/wireproxy", "WIREPROXY_APPROVALS_PASSWORD", "jit_approvals")
    assert (a.timeout, a.notice_interval, a.max_window) == (600, 5, 8 * 3600)
    assert (a.webhook, a.webhook_timeout, a.webhook_retries) == ("https://hooks.example.com/approvals", 2.5, 0)
    assert config.token_file == tmp_path / "secrets" / "admin.token"
    assert config.admin.public_url == "https://wireproxy.internal"


def test_defaults(tmp_path):
    config = load(tmp_path, '[admin]\nlisten = "127.0.0.1:7000"\n')
    a = config.approvals
    assert (a.store, a.timeout, a.notice_interval, a.max_window, a.webhook) == ("memory", 300, 10, 86400, None)
    assert config.token_file == tmp_path / "wireproxy-admin.token"          # beside the config file
    assert config.admin.public_url == "http://127.0.0.1:7000"
    bare = Config()
    assert bare.token_file == Path("wireproxy-admin.token").resolve()
    bare.log.key_file = tmp_path / "keys" / "wireproxy.key"
    assert bare.token_file == tmp_path / "keys" / "wireproxy-admin.token"   # else beside the key file


@pytest.mark.parametrize("text, line, problem", [
    ('[approvals]\nstore = "postgres"\n', 2, "needs approvals.dsn"),
    ('[approvals]\n\ntimeout = 0\n', 3, "approvals.timeout"),
    ('[approvals]\nwebhook_retries = -1\n', 2, "positive integer"),
    ('[approvals]\ntable = "Bad-Name"\n', 2, "identifier"),
    ('[approvals]\npassword_env = "not a name"\n', 2, "environment variable"),
    ('[approvals]\ndsn = "host=h password=x"\n', 2, "environment"),
    ('[approvals]\ntimout = 5\n', 2, "unknown key 'approvals.timout'"),
    ('[admin]\nurl = "javascript:alert(1)"\n', 2, "http:// or https://"),
])
def test_mistakes_name_the_line(tmp_path, text, line, problem):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert problem in str(info.value) and f"wireproxy.toml:{line}:" in str(info.value)
