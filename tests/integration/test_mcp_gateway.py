"""The mcp SDK's client through wireproxy to a real MCP server (the SDK's MCPServer): over
Streamable HTTP (SSE and JSON replies) and over stdio through `wireproxy mcp --`."""

from __future__ import annotations

import sys

import pytest
from mcp import Client, StdioServerParameters

from httpkit import MCP_RULES, TESTS, McpDemoServer, in_asyncio, running_proxy


async def _session(server) -> dict:
    out: dict = {}
    async with Client(server) as client:
        out["tools"] = [t.name for t in (await client.list_tools()).tools]
        out["drop"] = await client.call_tool("query", {"sql": "DROP TABLE users"})
        out["select"] = await client.call_tool("query", {"sql": "SELECT name, email FROM users ORDER BY id"})
        out["shell"] = await client.call_tool("run_shell", {"command": "id"})
        out["lookup"] = await client.call_tool("lookup", {"name": "Alice"})
        out["after"] = await client.call_tool("query", {"sql": "SELECT count(*) FROM users"})
    return out


def _check(out: dict) -> None:
    assert out["tools"] == ["query", "lookup"]                   # run_shell hidden by no-shell
    assert out["drop"].is_error
    assert "blocked by wireproxy rule no-drop" in out["drop"].content[0].text
    assert not out["select"].is_error
    text = out["select"].content[0].text
    assert text == "Alice, ****@example.com\nBob, ****@example.org"
    assert "alice@" not in str(out["select"].structured_content)
    assert out["shell"].is_error and "no-shell" in out["shell"].content[0].text
    assert "****@example.com" in out["lookup"].content[0].text and "alice@" not in out["lookup"].content[0].text
    assert out["after"].content[0].text == "2"                  # the DROP never reached the server


@pytest.fixture(params=[False, True], ids=["sse", "json"])
def mcp_http(request):
    server = McpDemoServer(json_response=request.param)
    yield server
    server.stop()


async def test_mcp_over_streamable_http(tmp_path, mcp_http):
    async with running_proxy(tmp_path, f'upstream = "{mcp_http.url}"', rules=MCP_RULES) as (_, port):
        out = await in_asyncio(_session, f"http://127.0.0.1:{port}/mcp")
    _check(out)


async def test_mcp_unknown_session_404_passes_through(tmp_path, mcp_http):
    import httpx

    async with running_proxy(tmp_path, f'upstream = "{mcp_http.url}"', rules=MCP_RULES) as (_, port):
        def post():
            return httpx.post(f"http://127.0.0.1:{port}/mcp",
                              headers={"mcp-session-id": "no-such-session", "accept": "application/json, text/event-stream",
                                       "mcp-protocol-version": "2025-06-18"},
                              json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        from httpkit import in_thread
        response = await in_thread(post)
    assert response.status_code == 404


async def test_mcp_over_stdio(tmp_path):
    rules = tmp_path / "mcp.toml"
    rules.write_text(MCP_RULES)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "wireproxy.cli", "mcp", "--rules", str(rules), "--",
              sys.executable, str(TESTS / "mcp_demo_server.py"), "stdio"])
    out = await in_asyncio(_session, params)
    _check(out)


async def test_mcp_over_stdio_is_recorded(tmp_path):
    import json
    import subprocess

    rules = tmp_path / "mcp.toml"
    rules.write_text(MCP_RULES)
    config = tmp_path / "wireproxy.toml"
    config.write_text(f'[log]\ndir = "{tmp_path / "logs"}"\nkey_file = "{tmp_path / "wireproxy.key"}"\n')
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "wireproxy.cli", "mcp", "--config", str(config), "--rules", str(rules), "--user", "agent-7", "--",
              sys.executable, str(TESTS / "mcp_demo_server.py"), "stdio"])

    async def session(server):
        async with Client(server) as client:
            await client.call_tool("query", {"sql": "DROP TABLE users"})
            await client.call_tool("query", {"sql": "SELECT email FROM users"})
    await in_asyncio(session, params)

    def sessions(*args):
        done = subprocess.run([sys.executable, "-m", "wireproxy.cli", "sessions", *args, "--config", str(config)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout
    (listed,) = [json.loads(line) for line in sessions("list", "--json").splitlines()]
    assert listed["user"] == "agent-7"
    shown = sessions("show", listed["id"])
    assert "[block no-drop]" in shown and "tools/call query" in shown
    assert "****@example.com" in shown and "alice@example.com" not in shown
    assert '"blocked": 1' in shown
