"""Writes the seed corpus fuzz/corpus/<target>/ (run once; the files are committed).

Postgres seeds are a psql-like session encoded with the codec itself (startup, simple and
extended queries, COPY, the server's answers); rule and config seeds are the shipped files.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from protocols.postgres import (Authentication, BackendKeyData, Bind, CommandComplete, CopyData, CopyDone,
                                CopyInResponse, DataRow, Describe, ErrorResponse, Execute, Field, Parse,
                                ParameterStatus, Query, ReadyForQuery, RowDescription, StartupMessage,
                                SSLRequest, Sync, Terminate)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"


def enc(*messages) -> bytes:
    return b"".join(m.encode() for m in messages)


def row(*values) -> bytes:
    out = [struct.pack("!h", len(values))]
    for v in values:
        out.append(struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v)
    return b"".join(out)


def seeds() -> dict[str, dict[str, bytes]]:
    sse_openai = b"".join(b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": w}}]}).encode()
                          + b"\n\n" for w in ["card ", "4111 1111 ", "1111 1111", " ok"]) + b"data: [DONE]\n\n"
    sse_anthropic = (b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
                     b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                     b"\"delta\":{\"type\":\"text_delta\",\"text\":\"alice@example.com\"}}\n\n: ping\r\n\r\n")
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "query", "arguments": {"sql": "DELETE FROM users"}}}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}
    return {
        "pg-frontend": {
            "simple": enc(Query("SELECT * FROM users WHERE id = 1"), Terminate()),
            "extended": enc(Parse("s1", "SELECT $1::int", ()), Bind("", "s1", (0,), (b"42",), (0,)),
                            Describe("P", ""), Execute("", 0), Sync()),
            "copy-in": enc(Query("COPY t FROM STDIN"), CopyData(b"1\talice@example.com\n"), CopyDone()),
        },
        "pg-backend": {
            "result": enc(RowDescription((Field("id", 0, 0, 23, 4, -1, 0),)), DataRow(row(b"1")),
                          CommandComplete("SELECT 1"), ReadyForQuery("I")),
            "auth": enc(Authentication(0), ParameterStatus("server_version", "15.6"), BackendKeyData(1, b"\0\0\0\2"),
                        ReadyForQuery("I")),
            "error": enc(ErrorResponse.make("42P01", "relation does not exist"), ReadyForQuery("I")),
            "copy-in": enc(CopyInResponse(0, (0, 0))),
        },
        "pg-startup": {
            "startup": StartupMessage({"user": "alice", "database": "app"}).encode(),
            "ssl-then-startup": SSLRequest().encode() + StartupMessage({"user": "bob"}).encode(),
        },
        "sql-facts": {"select": b"SELECT a, b FROM t WHERE c = 1", "delete": b"DELETE FROM users",
                      "do": b"DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'x'; END $$",
                      "copy": b"COPY (SELECT * FROM t) TO PROGRAM 'ls'"},
        "sql-facts-sqlglot": {"select": b"SELECT `a` FROM t LIMIT 1", "delete": b"DELETE FROM users"},
        "policy": {"delete": b"DELETE FROM users", "read-file": b"SELECT pg_read_file('/etc/passwd')",
                   "ok": b"SELECT 1", "truncate": b"truncate t; select 1"},
        "mask-datarow": {"row": row(b"1", b"alice@example.com", b"card 4111 1111 1111 1111"),
                         "nulls": row(None, None, b"x")},
        "mask-copy": {"text": b"1\talice@example.com\t4111 1111 1111 1111\n",
                      "csv": b",1,\"bob@x.org\",\"a\"\"b\"\n", "nulls": b"\\N\t\\N\t\\N\n"},
        "rules": {p.stem: p.read_bytes() for p in (ROOT / "rules").glob("*.toml")},
        "config": {p.stem: p.read_bytes() for p in (ROOT / "examples").glob("*.toml")},
        "sse": {"openai": sse_openai, "anthropic": sse_anthropic},
        "jsonrpc": {"call": json.dumps(call).encode(), "batch": json.dumps([init, call]).encode()},
        "http-request": {
            "get": b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "post": b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 13\r\n\r\n{\"model\":\"x\"}",
            "chunked": b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n0\r\n\r\n",
        },
    }


def main() -> None:
    for target, files in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    main()
