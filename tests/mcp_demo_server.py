"""A real MCP server (the mcp SDK's MCPServer) for the tests: a SQL tool over SQLite, a shell
tool a rule denies, an echo tool. `python mcp_demo_server.py stdio` serves on stdin/stdout;
`python mcp_demo_server.py http` serves Streamable HTTP on a loopback port it prints first."""

from __future__ import annotations

import socket
import sqlite3
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("demo-db")
db = sqlite3.connect(":memory:", check_same_thread=False)
db.executescript("""
    CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
    INSERT INTO users VALUES (1, 'Alice', 'alice@example.com'), (2, 'Bob', 'bob@example.org');
""")


@server.tool()
def query(sql: str) -> str:
    """Run one SQL statement against the demo database."""
    rows = db.execute(sql).fetchall()
    db.commit()
    return "\n".join(", ".join(str(v) for v in row) for row in rows) or "ok"


@server.tool()
def run_shell(command: str) -> str:
    """Run a shell command (never reached through wireproxy's rules)."""
    return f"ran {command}"


@server.tool()
def lookup(name: str) -> dict:
    """A user's record as structured content."""
    row = db.execute("SELECT id, name, email FROM users WHERE name = ?", (name,)).fetchone()
    return {"id": row[0], "name": row[1], "email": row[2]} if row else {}


def main() -> None:
    if sys.argv[1:] == ["stdio"]:
        server.run("stdio")
        return
    import anyio
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(sock.getsockname()[1], flush=True)
    app = server.streamable_http_app(json_response="--json" in sys.argv)
    config = uvicorn.Config(app, log_level="warning")
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
