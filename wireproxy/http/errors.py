"""Errors an HTTP client gets from wireproxy itself, as JSON in the OpenAI error shape:

    {"error": {"type": "blocked", "message": "blocked by wireproxy rule no-secrets: ...",
               "code": "wireproxy_blocked", "rule": "no-secrets", "param": null}}

The openai and anthropic SDKs read `error.message`, so the agent (and its user) sees why.
"""

from __future__ import annotations

import json

REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 407: "Proxy Authentication Required", 408: "Request Timeout", 413: "Content Too Large",
           429: "Too Many Requests", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "blocked",
         404: "not_found_error", 405: "invalid_request_error", 407: "authentication_error", 408: "timeout",
         413: "request_too_large", 429: "rate_limit_exceeded", 431: "request_too_large",
         500: "internal_error", 502: "upstream_error", 503: "unavailable", 504: "upstream_timeout"}


class HttpError(Exception):
    """Raised anywhere in an exchange: the client gets `status` with this JSON body."""

    def __init__(self, status: int, message: str, *, type: str | None = None, rule: str | None = None,
                 headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or TYPES.get(status, "error")
        self.rule = rule
        self.headers = headers or []

    def body(self) -> bytes:
        return error_body(self.status, self.message, type=self.type, rule=self.rule)


def error_body(status: int, message: str, *, type: str | None = None, rule: str | None = None) -> bytes:
    error = {"type": type or TYPES.get(status, "error"), "message": message,
             "code": f"wireproxy_{type or TYPES.get(status, 'error')}", "param": None}
    if rule is not None:
        error["rule"] = rule
    return json.dumps({"error": error}).encode("utf-8")
