"""JSON-RPC 2.0 envelopes (what MCP speaks): parse a body into messages, build replies.

    batch = parse(body)          # Batch(messages, is_batch) or None when it is not JSON-RPC
    kind(message)                # "request" | "notification" | "response" | "invalid"
    tool_error_result(id, text)  # an MCP tool result with isError: true
    encode(messages, is_batch)   # bytes again

Nothing here knows MCP's methods beyond the shape of a tool result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


@dataclass
class Batch:
    messages: list[dict[str, Any]]
    is_batch: bool


def parse_json(body: bytes) -> Any:
    """The JSON value of a body; ValueError when it is not JSON."""
    return json.loads(body.decode("utf-8"))


def from_value(value: Any) -> Batch | None:
    if isinstance(value, dict) and value.get("jsonrpc") == "2.0":
        return Batch([value], False)
    if isinstance(value, list) and value and all(isinstance(m, dict) and m.get("jsonrpc") == "2.0"
                                                 for m in value):
        return Batch(list(value), True)
    return None


def parse(body: bytes) -> Batch | None:
    try:
        return from_value(parse_json(body))
    except (ValueError, UnicodeDecodeError):
        return None


def kind(message: dict[str, Any]) -> str:
    if "method" in message:
        return "request" if "id" in message else "notification"
    if "id" in message and ("result" in message or "error" in message):
        return "response"
    return "invalid"


def result(ident: Any, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "result": value}


def error(ident: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": ident, "error": body}


def tool_error_result(ident: Any, text: str) -> dict[str, Any]:
    """An MCP tools/call answer the agent reads as a failed tool run, with the reason.
    (`resultType` is required by the newest protocol revisions and ignored by older ones.)"""
    return result(ident, {"content": [{"type": "text", "text": text}], "isError": True,
                          "resultType": "complete"})


def encode(messages: list[dict[str, Any]], is_batch: bool) -> bytes:
    value: Any = messages if is_batch else messages[0]
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
