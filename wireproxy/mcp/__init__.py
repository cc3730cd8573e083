"""MCP inspection shared by the HTTP path (Streamable HTTP) and the stdio wrapper (`wireproxy mcp`)."""

from .inspect import McpInspector, ToolVerdict

__all__ = ["McpInspector", "ToolVerdict"]
