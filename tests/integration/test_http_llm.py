"""The openai and anthropic SDKs through the reverse proxy, against a fake LLM the test starts."""

from __future__ import annotations

import hashlib
import json

import anthropic
import httpx
import openai
import pytest

from fakellm import FakeLLM
from httpkit import in_thread, running_proxy

CARD = "4111 1111 1111 1111"
ANSWER = f"Your card {CARD} is on file; we mail alice@example.com."
SPLIT = ["Your card 4111 1", "111 1111 11", "11 is on file; we mail alice@exa", "mple.com."]
MASKED = "Your card ****1111 is on file; we mail ****@example.com."


def _openai(port: int, key: str = "sk-client") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)


async def test_completion_answer_masked(tmp_path):
    with FakeLLM(ANSWER) as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"') as (_, port):
            def call():
                raw = _openai(port).chat.completions.with_raw_response.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "what is on file?"}])
                return raw.headers, raw.parse()
            headers, completion = await in_thread(call)
    assert completion.choices[0].message.content == MASKED
    assert float(headers["x-wireproxy-overhead-ms"]) >= 0


async def test_streamed_answer_split_card_masked(tmp_path):
    with FakeLLM(chunks=SPLIT) as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"') as (_, port):
            def call():
                stream = _openai(port).chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
                return [c.choices[0].delta.content or "" for c in stream if c.choices]
            pieces = await in_thread(call)
    assert "".join(pieces) == MASKED
    assert len([p for p in pieces if p]) >= 2, "the stream must stay a stream"
    assert not any("4111 1" in p or "alice" in p for p in pieces)


async def test_aws_key_in_prompt_is_403_and_never_reaches_upstream(tmp_path):
    with FakeLLM(ANSWER) as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"') as (_, port):
            def call():
                with pytest.raises(openai.PermissionDeniedError) as err:
                    _openai(port).chat.completions.create(
                        model="gpt-4o", messages=[{"role": "user", "content": "use AKIAIOSFODNN7EXAMPLE please"}])
                return err.value
            error = await in_thread(call)
        assert upstream.seen == []
    assert error.status_code == 403
    assert "blocked by wireproxy rule no-aws-keys" in error.message
    assert error.body["type"] == "blocked"


async def test_prompt_pii_masked_before_it_leaves(tmp_path):
    with FakeLLM("ok") as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"') as (_, port):
            await in_thread(lambda: _openai(port).chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"charge {CARD} for bob@example.org"}]))
        sent = upstream.seen[0]["body"]["messages"][0]["content"]
    assert sent == "charge ****1111 for ****@example.org"


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_messages_masked(tmp_path, stream):
    with FakeLLM(chunks=SPLIT) as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"') as (_, port):
            def call():
                client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="sk-ant-client", max_retries=0)
                args = dict(model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
                if not stream:
                    return client.messages.create(**args).content[0].text
                with client.messages.stream(**args) as s:
                    pieces = list(s.text_stream)
                    return "".join(pieces), s.get_final_message().content[0].text
            got = await in_thread(call)
    if stream:
        assert got == (MASKED, MASKED)
    else:
        assert got == MASKED


async def test_anthropic_secret_in_system_prompt_blocked(tmp_path):
    with FakeLLM("ok") as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"') as (_, port):
            def call():
                client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="k", max_retries=0)
                with pytest.raises(anthropic.PermissionDeniedError) as err:
                    client.messages.create(model="claude-test", max_tokens=10, system="key: AKIAIOSFODNN7EXAMPLE",
                                           messages=[{"role": "user", "content": "hi"}])
                return err.value
            error = await in_thread(call)
        assert upstream.seen == []
    assert "no-aws-keys" in str(error)


CLIENTS = '''
upstream_key_env = "WIREPROXY_TEST_UPSTREAM_KEY"
requests_per_minute = 2
[[http.client]]
name = "agent-7"
key_sha256 = "{digest}"
'''


async def test_client_keys_identity_and_upstream_key(tmp_path, monkeypatch):
    monkeypatch.setenv("WIREPROXY_TEST_UPSTREAM_KEY", "sk-real-upstream-key")
    digest = hashlib.sha256(b"wp-agent-7-key").hexdigest()
    with FakeLLM("ok") as upstream:
        listener = f'upstream = "{upstream.url}"' + CLIENTS.format(digest=digest)
        async with running_proxy(tmp_path, listener) as (_, port):
            def call():
                with pytest.raises(openai.AuthenticationError):
                    _openai(port, "wp-wrong-key").chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "hi"}])
                _openai(port, "wp-agent-7-key").chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
                httpx.post(f"http://127.0.0.1:{port}/v1/messages", headers={"x-api-key": "wp-agent-7-key"},
                           json={"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
                with pytest.raises(openai.RateLimitError) as err:
                    _openai(port, "wp-agent-7-key").chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "hi"}])
                return err.value
            limited = await in_thread(call)
    assert len(upstream.seen) == 2
    openai_seen, anthropic_seen = upstream.seen        # each key style is answered in kind
    assert openai_seen["headers"]["authorization"] == "Bearer sk-real-upstream-key"
    assert anthropic_seen["headers"]["x-api-key"] == "sk-real-upstream-key"
    assert "authorization" not in anthropic_seen["headers"]
    assert all("wp-agent-7-key" not in json.dumps(s["headers"]) for s in upstream.seen)
    assert limited.response.headers.get("retry-after")
    assert "agent-7" in limited.message


async def test_upstream_404_and_plain_json_pass_through(tmp_path):
    with FakeLLM("ok") as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"', rules=None) as (_, port):
            def call():
                with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                    return client.get("/nowhere"), client.post("/echo", json={"a": "alice@example.com"})
            missing, echoed = await in_thread(call)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "no such route"
    assert echoed.json()["echo"] == {"a": "alice@example.com"}      # no rules: nothing masked


async def test_tokens_per_minute_from_usage(tmp_path):
    with FakeLLM("ok") as upstream:                      # every answer says it used 30 tokens
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"\ntokens_per_minute = 40', rules=None) as (_, port):
            def call():
                client = _openai(port)
                ask = dict(model="m", messages=[{"role": "user", "content": "hi"}])
                client.chat.completions.create(**ask)
                client.chat.completions.create(**ask)    # 10 left: may go, and runs the bucket dry
                with pytest.raises(openai.RateLimitError) as err:
                    client.chat.completions.create(**ask)
                return err.value
            error = await in_thread(call)
    assert len(upstream.seen) == 2 and "rate limit" in error.message


async def test_secret_in_query_string_blocked(tmp_path):
    with FakeLLM("ok") as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"') as (_, port):
            response = await in_thread(lambda: httpx.get(f"http://127.0.0.1:{port}/echo?key=AKIAIOSFODNN7EXAMPLE"))
        assert upstream.seen == []
    assert response.status_code == 403 and response.json()["error"]["rule"] == "no-aws-keys"
