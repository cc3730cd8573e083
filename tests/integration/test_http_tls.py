"""TLS towards clients on an [[http]] listener: the openai SDK over https with a test CA, a
plaintext client refused, a broken certificate reported at start, and SIGHUP's reload."""

from __future__ import annotations

import socket
import ssl

import httpx
import openai
import pytest
import trio

from fakellm import FakeLLM
from httpkit import in_thread, running_proxy
from wireproxy.config import load_config
from wireproxy.config.tomlfile import ConfigError
from wireproxy.http.ca import LeafMinter, init_ca
from wireproxy.server import Server

ANSWER = "Your card 4111 1111 1111 1111 is on file."
MASKED = "Your card ****1111 is on file."


def _leaf(tmp_path, name: str):
    """A certificate for 127.0.0.1 from a test CA (ca.crt), and its key file (0600)."""
    ca_cert, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    if not ca_cert.exists():
        init_ca(ca_cert, ca_key, name="test client-side CA")
    minter = LeafMinter(ca_cert, ca_key)
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert.write_bytes(minter.leaf_pem("127.0.0.1"))
    key.write_bytes(minter._key_pem)
    key.chmod(0o600)
    return cert, key


def _peer_certificate(port: int, ca) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)


async def test_openai_sdk_over_https_verifies_and_is_masked(tmp_path):
    cert, key = _leaf(tmp_path, "server")
    with FakeLLM(ANSWER) as upstream:
        listener = f'upstream = "{upstream.url}"\ntls_cert = "{cert}"\ntls_key = "{key}"'
        async with running_proxy(tmp_path, listener) as (_, port):
            def call():
                client = openai.OpenAI(base_url=f"https://127.0.0.1:{port}/v1", api_key="sk-client",
                                       max_retries=0, http_client=httpx.Client(verify=ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))))
                return client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "what is on file?"}])

            completion = await in_thread(call)

            def plaintext():
                with pytest.raises(httpx.HTTPError):
                    httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)

            await in_thread(plaintext)          # no answer in clear text from a TLS listener
            completion_again = await in_thread(call)    # and the listener goes on
    assert completion.choices[0].message.content == MASKED
    assert completion_again.choices[0].message.content == MASKED


async def test_sighup_reload_serves_the_new_certificate(tmp_path):
    cert, key = _leaf(tmp_path, "server")
    ca = tmp_path / "ca.crt"
    with FakeLLM(ANSWER) as upstream:
        listener = f'upstream = "{upstream.url}"\ntls_cert = "{cert}"\ntls_key = "{key}"'
        async with running_proxy(tmp_path, listener) as (server, port):
            first = await in_thread(_peer_certificate, port, ca)
            new_cert, new_key = _leaf(tmp_path, "renewed")
            cert.write_bytes(new_cert.read_bytes())
            key.write_bytes(new_key.read_bytes())
            assert await in_thread(_peer_certificate, port, ca) == first    # until the reload
            server.reload("SIGHUP")
            second = await in_thread(_peer_certificate, port, ca)
            key.write_text("not a key")                                     # a broken renewal
            server.reload("SIGHUP")
            third = await in_thread(_peer_certificate, port, ca)
    assert second != first and second == ssl.PEM_cert_to_DER_cert(new_cert.read_text())
    assert third == second           # the broken pair is refused; the last good one stays


@pytest.mark.parametrize("problem", ["missing", "garbage", "half"])
async def test_a_bad_certificate_is_one_clear_config_error(tmp_path, problem):
    cert, key = _leaf(tmp_path, "server")
    lines = ["[[http]]", 'listen = "127.0.0.1:0"', 'upstream = "http://127.0.0.1:9"']
    if problem == "missing":
        lines += [f'tls_cert = "{tmp_path / "nope.crt"}"', f'tls_key = "{key}"']
    elif problem == "garbage":
        cert.write_text("-----BEGIN CERTIFICATE-----\nxx\n")
        lines += [f'tls_cert = "{cert}"', f'tls_key = "{key}"']
    else:
        lines += [f'tls_cert = "{cert}"']
    (tmp_path / "wireproxy.toml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as err:
        Server(load_config(tmp_path / "wireproxy.toml"))
    message = str(err.value)
    assert "\n" not in message and "PRIVATE KEY" not in message
    assert {"missing": "nope.crt", "garbage": "cannot load certificate", "half": "tls_key"}[problem] in message
    await trio.lowlevel.checkpoint()
