"""Every HTTP and MCP exchange lands, masked, in the encrypted session log, and
`wireproxy sessions show` replays it: request, masked answer, streamed text reassembled; MCP
calls with their decisions and masked results."""

from __future__ import annotations

import json
import subprocess
import sys

import openai
from mcp import Client

from fakellm import FakeLLM
from httpkit import MCP_RULES, McpDemoServer, in_asyncio, in_thread, running_proxy

SPLIT = ["Card 4111 1", "111 1111 1111 for bob@exa", "mple.org"]


def _sessions(tmp_path, *args) -> str:
    done = subprocess.run([sys.executable, "-m", "wireproxy.cli", "sessions", *args,
                           "--log-dir", str(tmp_path / "logs"), "--key-file", str(tmp_path / "wireproxy.key")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _log_toml(tmp_path) -> str:
    return f'[log]\ndir = "{tmp_path / "logs"}"\nkey_file = "{tmp_path / "wireproxy.key"}"\n'


async def test_llm_exchange_replayed_masked(tmp_path):
    with FakeLLM(chunks=SPLIT) as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"', top=_log_toml(tmp_path)) as (_, port):
            def call():
                client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
                messages = [{"role": "user", "content": "my mail is alice@example.com"}]
                client.chat.completions.create(model="gpt-4o", messages=messages)
                with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=messages,
                                                                            stream=True) as response:
                    return list(response.iter_lines())
            await in_thread(call)
    sessions = [json.loads(line) for line in _sessions(tmp_path, "list", "--json").splitlines()]
    assert len(sessions) == 1
    shown = _sessions(tmp_path, "show", sessions[0]["id"])
    assert "POST http://127.0.0.1:" in shown and "/v1/chat/completions" in shown
    assert "HTTP 200" in shown
    assert "****@example.com" in shown and "alice@example.com" not in shown        # the prompt, masked
    assert "Card ****1111 for ****@example.org" in shown                            # the stream, reassembled
    assert "4111 1" not in shown and "bob@" not in shown
    assert '"model"' in shown or "model: " in shown


async def test_mcp_session_replayed_with_decisions(tmp_path):
    server = McpDemoServer()
    try:
        async with running_proxy(tmp_path, f'upstream = "{server.url}"', rules=MCP_RULES,
                                 top=_log_toml(tmp_path)) as (_, port):
            async def session(url):
                async with Client(url) as client:
                    await client.list_tools()
                    await client.call_tool("query", {"sql": "DROP TABLE users"})
                    await client.call_tool("query", {"sql": "SELECT email FROM users"})
            await in_asyncio(session, f"http://127.0.0.1:{port}/mcp")
    finally:
        server.stop()
    ids = [json.loads(line)["id"] for line in _sessions(tmp_path, "list", "--json").splitlines()]
    shown = "\n".join(_sessions(tmp_path, "show", i) for i in ids)
    assert "[block no-drop]" in shown and "DROP TABLE users" in shown
    assert "tools/call query" in shown
    assert "****@example.com" in shown and "alice@example.com" not in shown
    assert "hidden" in shown and "run_shell" in shown
