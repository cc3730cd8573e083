"""Group-scoped rules and masks on the HTTP path: two client keys, one in group `interns`; the
real openai SDK through wireproxy to the fake LLM the tests start."""

from __future__ import annotations

import hashlib

import openai
import pytest
from fakellm import FakeLLM
from httpkit import in_thread, running_proxy

RULES = '''
[[rule]]
id = "interns-no-gpt4"
action = "block"
groups = ["interns"]
models = ["gpt-4*"]
message = "interns use the small model"

[[mask]]
id = "mail-for-interns"
detectors = ["email"]
style = "partial"
groups = ["interns"]
'''

CLIENTS = '''
[[http.client]]
name = "ann"
key_sha256 = "{intern}"
groups = ["interns"]

[[http.client]]
name = "bob"
key_sha256 = "{staff}"
groups = ["staff"]
'''
ANSWER = "write to alice@example.com"


def _openai(port: int, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)


def _listener(upstream) -> str:
    digest = {name: hashlib.sha256(f"wp-{name}-key".encode()).hexdigest() for name in ("intern", "staff")}
    return f'upstream = "{upstream.url}"' + CLIENTS.format(**digest)


async def test_a_group_scoped_rule_blocks_one_client_and_not_the_other(tmp_path):
    with FakeLLM(ANSWER) as upstream:
        async with running_proxy(tmp_path, _listener(upstream), rules=RULES) as (_, port):
            def call():
                ask = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
                with pytest.raises(openai.PermissionDeniedError) as err:
                    _openai(port, "wp-intern-key").chat.completions.create(**ask)
                staff = _openai(port, "wp-staff-key").chat.completions.create(**ask)
                small = _openai(port, "wp-intern-key").chat.completions.create(
                    model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
                return err.value, staff, small
            blocked, staff, small = await in_thread(call)
        assert [s["body"]["model"] for s in upstream.seen] == ["gpt-4o", "gpt-3.5-turbo"]
    assert blocked.status_code == 403 and "blocked by wireproxy rule interns-no-gpt4" in blocked.message
    assert staff.choices[0].message.content == ANSWER                     # bob's groups: no mask either
    assert small.choices[0].message.content == "write to ****@example.com"   # ann's: masked
