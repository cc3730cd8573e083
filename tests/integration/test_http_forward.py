"""The forward proxy: `wireproxy ca init`, then httpx with HTTPS_PROXY through CONNECT: hosts
listed in `intercept` are opened (leaf certificate from wireproxy's CA, rules applied), others
tunnelled untouched or refused; plain absolute-form requests are judged too."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys

import httpx
import pytest

from fakellm import FakeLLM
from httpkit import in_thread, running_proxy
from wireproxy.http.ca import LeafMinter, init_ca

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = "mail alice@example.com"


def _tls_upstream(tmp_path, host: str) -> FakeLLM:
    """A fake LLM on TLS with a certificate for `host` from a test CA (upstream-ca.crt)."""
    ca_cert, ca_key = tmp_path / "upstream-ca.crt", tmp_path / "upstream-ca.key"
    if not ca_cert.exists():
        init_ca(ca_cert, ca_key, name="test upstream CA")
    minter = LeafMinter(ca_cert, ca_key)
    chain = tmp_path / f"upstream-{host}.pem"
    chain.write_bytes(minter.leaf_pem(host) + minter._key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    return FakeLLM(ANSWER, ssl_context=context)


@pytest.fixture
def wireproxy_ca(tmp_path):
    cert, key = tmp_path / "ca" / "wireproxy-ca.crt", tmp_path / "ca" / "wireproxy-ca.key"
    done = subprocess.run([sys.executable, "-m", "wireproxy.cli", "ca", "init", "--cert", str(cert), "--key", str(key)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    again = subprocess.run([sys.executable, "-m", "wireproxy.cli", "ca", "init", "--cert", str(cert), "--key", str(key)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr
    return cert, key


def _forward_listener(cert, key, tmp_path, unlisted="tunnel", upstream_ca=True) -> str:
    text = f'intercept = ["localhost"]\nunlisted = "{unlisted}"\nca_cert = "{cert}"\nca_key = "{key}"\n'
    return text + (f'upstream_ca = "{tmp_path / "upstream-ca.crt"}"\n' if upstream_ca else "")


async def test_connect_interception_masks_and_blocks(tmp_path, wireproxy_ca, monkeypatch):
    cert, key = wireproxy_ca
    with _tls_upstream(tmp_path, "localhost") as upstream:
        async with running_proxy(tmp_path, _forward_listener(cert, key, tmp_path)) as (_, port):
            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
            monkeypatch.setenv("NO_PROXY", "")

            def call():
                trust = ssl.create_default_context(cafile=str(cert))       # wireproxy's CA, not the upstream's
                with httpx.Client(verify=trust) as client:
                    url = f"https://localhost:{upstream.port}/v1/chat/completions"
                    answer = client.post(url, json=BODY)
                    blocked = client.post(url, json={**BODY, "messages": [
                        {"role": "user", "content": "AKIAIOSFODNN7EXAMPLE"}]})
                    return answer, blocked
            answer, blocked = await in_thread(call)
        assert len(upstream.seen) == 1
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "mail ****@example.com"
    assert blocked.status_code == 403 and blocked.json()["error"]["rule"] == "no-aws-keys"


async def test_unlisted_host_is_tunnelled_untouched(tmp_path, wireproxy_ca, monkeypatch):
    cert, key = wireproxy_ca
    with _tls_upstream(tmp_path, "127.0.0.1") as upstream:
        async with running_proxy(tmp_path, _forward_listener(cert, key, tmp_path)) as (_, port):
            def call():
                trust = ssl.create_default_context(cafile=str(tmp_path / "upstream-ca.crt"))  # end to end TLS
                with httpx.Client(verify=trust, proxy=f"http://127.0.0.1:{port}") as client:
                    return client.post(f"https://127.0.0.1:{upstream.port}/v1/chat/completions", json=BODY)
            answer = await in_thread(call)
    assert answer.json()["choices"][0]["message"]["content"] == ANSWER        # not ours to mask


async def test_unlisted_host_refused(tmp_path, wireproxy_ca):
    cert, key = wireproxy_ca
    with _tls_upstream(tmp_path, "127.0.0.1") as upstream:
        async with running_proxy(tmp_path, _forward_listener(cert, key, tmp_path, "refuse")) as (_, port):
            def call():
                with httpx.Client(verify=False, proxy=f"http://127.0.0.1:{port}") as client:
                    with pytest.raises(httpx.ProxyError) as err:
                        client.get(f"https://127.0.0.1:{upstream.port}/")
                    return err.value
            error = await in_thread(call)
        assert upstream.seen == []
    assert "403" in str(error)


async def test_absolute_form_http_is_judged(tmp_path, wireproxy_ca):
    cert, key = wireproxy_ca
    with FakeLLM(ANSWER) as upstream:
        async with running_proxy(tmp_path, _forward_listener(cert, key, tmp_path, upstream_ca=False)) as (_, port):
            def call():
                with httpx.Client(proxy=f"http://127.0.0.1:{port}") as client:
                    return client.post(f"{upstream.url}/v1/chat/completions", json=BODY)
            answer = await in_thread(call)
    assert answer.json()["choices"][0]["message"]["content"] == "mail ****@example.com"


async def test_upstream_tls_is_verified(tmp_path):
    """A reverse proxy to an HTTPS upstream whose CA wireproxy does not trust: 502, not a leak."""
    with _tls_upstream(tmp_path, "localhost") as upstream:
        listener = f'upstream = "https://localhost:{upstream.port}"'
        async with running_proxy(tmp_path, listener) as (_, port):
            refused = await in_thread(lambda: httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY))
        trusted = listener + f'\nupstream_ca = "{tmp_path / "upstream-ca.crt"}"'
        async with running_proxy(tmp_path, trusted) as (_, port):
            answer = await in_thread(lambda: httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY))
        assert len(upstream.seen) == 1
    assert refused.status_code == 502 and "certificate" in refused.json()["error"]["message"].lower()
    assert answer.json()["choices"][0]["message"]["content"] == "mail ****@example.com"


async def test_connect_to_a_closed_port_is_502(tmp_path, wireproxy_ca):
    import socket as _socket

    cert, key = wireproxy_ca
    closed = _socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    async with running_proxy(tmp_path, _forward_listener(cert, key, tmp_path, upstream_ca=False)) as (_, port):
        def call():
            with httpx.Client(verify=False, proxy=f"http://127.0.0.1:{port}") as client:
                with pytest.raises(httpx.ProxyError) as err:
                    client.get(f"https://127.0.0.1:{closed_port}/")
                return err.value
        error = await in_thread(call)
    assert "502" in str(error)


async def test_with_client_keys_connect_needs_one(tmp_path, wireproxy_ca):
    import hashlib

    cert, key = wireproxy_ca
    digest = hashlib.sha256(b"wp-key-7").hexdigest()
    listener = _forward_listener(cert, key, tmp_path) + f'[[http.client]]\nname = "agent-7"\nkey_sha256 = "{digest}"\n'
    with _tls_upstream(tmp_path, "127.0.0.1") as upstream:
        async with running_proxy(tmp_path, listener) as (_, port):
            def call():
                trust = ssl.create_default_context(cafile=str(tmp_path / "upstream-ca.crt"))
                with httpx.Client(verify=trust, proxy=f"http://127.0.0.1:{port}") as anonymous:
                    with pytest.raises(httpx.ProxyError) as err:
                        anonymous.post(f"https://127.0.0.1:{upstream.port}/v1/chat/completions", json=BODY)
                with httpx.Client(verify=trust, proxy=f"http://agent-7:wp-key-7@127.0.0.1:{port}") as known:
                    answer = known.post(f"https://127.0.0.1:{upstream.port}/v1/chat/completions", json=BODY)
                return err.value, answer
            refused, answer = await in_thread(call)
        assert len(upstream.seen) == 1
    assert "407" in str(refused)
    assert answer.status_code == 200
