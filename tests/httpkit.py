"""Helpers for the HTTP tests: wireproxy in-process in front of a local upstream, SDK calls in a
worker thread (the SDKs are sync or asyncio; the suite runs trio), the MCP demo server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from wireproxy.config import load_config
from wireproxy.server import Server

TESTS = Path(__file__).resolve().parent

PII_RULES = '''
[[rule]]
id = "no-aws-keys"
action = "block"
detectors = ["aws_access_key"]
message = "no credentials to the model"

[[mask]]
id = "pii"
detectors = ["credit_card", "email"]
style = "partial"
'''

MCP_RULES = '''
[[rule]]
id = "no-drop"
action = "block"
statements = ["drop", "truncate"]
message = "agents may not drop tables"

[[rule]]
id = "no-shell"
action = "block"
tools = ["run_shell"]

[[mask]]
id = "pii"
detectors = ["email"]
style = "partial"

[[tool]]
name = "query"
sql_argument = "sql"
dialect = "sqlite"
'''


@asynccontextmanager
async def running_proxy(tmp_path: Path, listener: str, rules: str | None = PII_RULES, top: str = "",
                        approvals=None):
    """wireproxy serving one [[http]] listener (`listener`: its TOML lines, `listen` given);
    yields (server, port)."""
    lines = ["[[http]]", 'listen = "127.0.0.1:0"']
    if rules is not None:
        (tmp_path / "rules.toml").write_text(rules)
        lines.append('rules = ["rules.toml"]')
    (tmp_path / "wireproxy.toml").write_text("\n".join([top, *lines, listener]) + "\n")
    server = Server(load_config(tmp_path / "wireproxy.toml"), approvals=approvals)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(server.run)
        port = next(addr for key, addrs in bound.items() if key.startswith("http:") for addr in addrs)[1]
        try:
            yield server, port
        finally:
            server.request_shutdown()
            server.request_shutdown()


async def in_thread(fn, *args):
    return await trio.to_thread.run_sync(fn, *args)


async def in_asyncio(coro_fn, *args):
    """Run an asyncio coroutine function (the mcp SDK) in a worker thread."""
    return await trio.to_thread.run_sync(lambda: asyncio.run(coro_fn(*args)))


class McpDemoServer:
    """tests/mcp_demo_server.py over Streamable HTTP in a child process."""

    def __init__(self, json_response: bool = False):
        args = [sys.executable, str(TESTS / "mcp_demo_server.py"), "http"] + (["--json"] if json_response else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.port = int(self.proc.stdout.readline())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
