"""Client keys, rate limits and the [[http]] config keys."""

from __future__ import annotations

import hashlib

import pytest

from wireproxy.config import ConfigError, load_config
from wireproxy.http.identity import ClientKey, identify, presented_key, upstream_auth_header, without_keys
from wireproxy.http.ratelimit import RateLimiter

KEY = ClientKey("agent-7", hashlib.sha256(b"wp-secret").digest())


def test_presented_key_styles():
    assert presented_key([("authorization", "Bearer wp-secret")]) == ("wp-secret", "bearer")
    assert presented_key([("x-api-key", "wp-secret")]) == ("wp-secret", "x-api-key")
    assert presented_key([("api-key", "wp-secret")]) == ("wp-secret", "api-key")
    assert presented_key([("authorization", "Basic abc")]) == (None, None)


def test_identify_and_strip():
    assert identify((KEY,), "wp-secret") is KEY
    assert identify((KEY,), "wp-secreT") is None and identify((KEY,), None) is None
    headers = [("authorization", "Bearer x"), ("x-api-key", "y"), ("api-key", "z"), ("accept", "*/*")]
    assert without_keys(headers) == [("accept", "*/*")]
    assert upstream_auth_header("bearer", "sk") == ("authorization", "Bearer sk")
    assert upstream_auth_header("x-api-key", "sk") == ("x-api-key", "sk")


def test_rate_limits_refill():
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.admit("a", 2, None) == 0 and limiter.admit("a", 2, None) == 0
    assert limiter.admit("a", 2, None) == pytest.approx(30.0)
    assert limiter.admit("b", 2, None) == 0                       # per identity
    now[0] = 30.0
    assert limiter.admit("a", 2, None) == 0
    limiter.spend_tokens("a", 600, 1200)                         # a big answer: in debt
    assert limiter.admit("a", None, 600) > 0
    now[0] = 30.0 + 61.0
    assert limiter.admit("a", None, 600) == 0


def _config(tmp_path, text):
    path = tmp_path / "wireproxy.toml"
    path.write_text(text)
    return load_config(path)


def test_http_config(tmp_path):
    digest = hashlib.sha256(b"k").hexdigest()
    config = _config(tmp_path, f'''
[[http]]
listen = "127.0.0.1:6488"
upstream = "https://api.example.com/v1"
max_body_bytes = 1000
header_timeout = 2.5
requests_per_minute = 60
upstream_auth = "x-api-key"

[[http.client]]
name = "agent-7"
key_sha256 = "{digest}"
tokens_per_minute = 5000
''')
    (listener,) = config.http
    assert listener.max_body_bytes == 1000 and listener.header_timeout == 2.5
    assert listener.clients[0].name == "agent-7" and listener.clients[0].tokens_per_minute == 5000
    assert listener.clients[0].key_sha256 == bytes.fromhex(digest)


@pytest.mark.parametrize("text, problem", [
    ('upstream = "ftp://x"', "http:// or https://"),
    ('upstream = "http://x"\nmax_body_bytes = 0', "positive integer"),
    ('upstream = "http://x"\nintercept = ["a"]', "forward proxy"),
    ('unlisted = "maybe"', "tunnel, refuse"),
    ('upstream = "http://x"\n[[http.client]]\nname = "a"', "key_sha256"),
    ('upstream = "http://x"\n[[http.client]]\nname = "a"\nkey_sha256 = "abc"', "64 hex digits"),
    ('upstream = "http://x"\nheader_timeut = 3', "unknown key"),
])
def test_http_config_errors(tmp_path, text, problem):
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, f'[[http]]\nlisten = "127.0.0.1:1"\n{text}\n')
    assert problem in str(err.value) and "wireproxy.toml:" in str(err.value)


def test_upstream_key_must_be_set_and_header_safe(tmp_path, monkeypatch):
    from wireproxy.http.proxy import HttpProxy

    config = _config(tmp_path, '[[http]]\nlisten = "127.0.0.1:1"\nupstream = "http://x"\n'
                               'upstream_key_env = "WP_TEST_KEY"\n')
    monkeypatch.delenv("WP_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="WP_TEST_KEY is not set"):
        HttpProxy(config.http[0])
    monkeypatch.setenv("WP_TEST_KEY", "sk-bad\r\nX-Injected: 1")
    with pytest.raises(ConfigError) as err:
        HttpProxy(config.http[0])
    assert "sk-bad" not in str(err.value)
    monkeypatch.setenv("WP_TEST_KEY", "sk-good")
    assert HttpProxy(config.http[0]).upstream_key == "sk-good"


def test_proxy_key():
    import base64

    from wireproxy.http.identity import proxy_key

    basic = base64.b64encode(b"agent-7:wp-secret").decode()
    assert proxy_key([("proxy-authorization", f"Basic {basic}")]) == "wp-secret"
    assert proxy_key([("proxy-authorization", "Bearer wp-secret")]) == "wp-secret"
    assert proxy_key([("proxy-authorization", "Basic !!!")]) is None
    assert proxy_key([("authorization", "Bearer wp-secret")]) is None
