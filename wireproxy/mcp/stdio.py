"""`wireproxy mcp -- COMMAND ARGS...`: an MCP server over stdio, wrapped.

wireproxy starts the server as its child and sits between the MCP client (on wireproxy's own
stdin and stdout) and the child's stdin and stdout, one JSON-RPC message per line, applying
the same inspection as on HTTP (inspect.py): tools/call judged (a blocked call answered with
an isError result, never sent on), tools/list filtered, everything the server says masked,
every call recorded. The child's stderr is wireproxy's. When either side closes, the other is
closed too; wireproxy exits with the child's status.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Callable

import trio

from protocols.http import jsonrpc
from wireproxy.telemetry.logs import log

from ..http.approval import ApprovalRequest, approvers_of, fingerprint, hold
from ..streams import OrderedWriter
from .inspect import McpInspector

MAX_LINE = 64 * 1024 * 1024


class LineReader:
    def __init__(self, stream: trio.abc.ReceiveStream, max_line: int = MAX_LINE):
        self.stream = stream
        self.max_line = max_line
        self.buf = bytearray()

    async def lines(self):
        while True:
            i = self.buf.find(b"\n")
            while i != -1:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                yield line
                i = self.buf.find(b"\n")
            if len(self.buf) > self.max_line:
                raise ValueError(f"a message longer than {self.max_line} bytes")
            data = await self.stream.receive_some(65536)
            if not data:
                if self.buf.strip():
                    yield bytes(self.buf)
                return
            self.buf += data


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class StdioBridge:
    def __init__(self, view_for: Callable[[], Any], *, user: str | None, record=None, approvals=None,
                 approval_timeout: float = 300.0, session_id: str | None = None):
        self.view_for = view_for              # the live rules (RulesView) at this moment
        self.user = user
        self.record = record
        self.approvals = approvals
        self.approval_timeout = approval_timeout
        self.session_id = session_id
        self.inspector = McpInspector(view_for(), user=user, record=record)
        self.calls = 0
        self.blocked = 0

    async def run(self, command: list[str], client_in, client_out) -> int:
        process = await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        to_client = OrderedWriter(client_out)
        try:
            async with trio.open_nursery() as nursery:
                async def client_side():
                    await self._from_client(client_in, process.stdin, to_client)
                    await process.stdin.aclose()

                async def server_side():
                    await self._from_server(process.stdout, to_client)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(client_side)
                nursery.start_soon(server_side)
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        return process.returncode

    async def _from_client(self, client_in, server_stdin, to_client: OrderedWriter) -> None:
        async for line in LineReader(client_in).lines():
            self.inspector.rules = self.view_for()       # rules reloaded meanwhile apply from now on
            reply = await self._judge_line(line)
            try:
                if reply is not None:
                    await to_client.send(reply)
                else:
                    await server_stdin.send_all(line if line.endswith(b"\n") else line + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return

    async def _judge_line(self, line: bytes) -> bytes | None:
        batch = jsonrpc.parse(line.strip())
        if batch is None:
            return None
        replies = []
        for message in batch.messages:
            verdict = self.inspector.client_message(message)
            if jsonrpc.kind(message) == "request" and message.get("method") == "tools/call":
                self.calls += 1
            if verdict.held:
                request = ApprovalRequest(user=self.user or "", database=None, statement=verdict.statement[:8192],
                                          rule_id=verdict.decision.rule_id, approvers=approvers_of(verdict.decision),
                                          timeout=self.approval_timeout,
                                          fingerprint=fingerprint("mcp", verdict.decision.rule_id, verdict.statement),
                                          source="mcp",
                                          session_id=self.session_id, client="stdio")
                approved, why = await hold(self.approvals, request)
                verdict.reply = self.inspector.answer_held(message, verdict, approved, why)
            if verdict.reply is not None:
                self.blocked += 1
                log("mcp.block", tool=verdict.tool, rule=verdict.decision.rule_id, user=self.user)
                replies.append(verdict.reply)
        if not replies:
            return None
        if batch.is_batch and len(replies) != len(batch.messages):
            return None if not replies else _dumps(replies + [
                jsonrpc.error(m.get("id"), jsonrpc.INVALID_REQUEST, "not sent: another call in this batch was blocked")
                for m in batch.messages if jsonrpc.kind(m) == "request"
                and all(r.get("id") != m.get("id") for r in replies)])
        return _dumps(replies if batch.is_batch else replies[0])

    async def _from_server(self, server_stdout, to_client: OrderedWriter) -> None:
        async for line in LineReader(server_stdout).lines():
            try:
                value = json.loads(line)
            except ValueError:
                view = self.view_for()
                text = line.decode("utf-8", "replace")
                out = (view.mask_text(text) if view.mask_text else text).encode("utf-8")
            else:
                out = _dumps(self.inspector.server_batch(value))
            try:
                await to_client.send(out)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
