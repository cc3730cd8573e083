"""The admin API's routes: approvals, health and metrics, behind a bearer token.

    GET  /healthz                      no token: {"status": "ok" | "degraded", "upstreams": {...}, ...}
    GET  /metrics                      Prometheus text
    GET  /approvals[?state=all]        {"approvals": [...]}: pending ones, or the latest of all
    GET  /approvals/ID                 one approval
    POST /approvals/ID/approve         {"approver": "bob", "reason": "...", "window": "15m"}
    POST /approvals/ID/deny            {"approver": "bob", "reason": "..."}

Everything but /healthz answers 401 without the right token, before anything else is looked at
(so the route map is not probed without it). Errors are JSON: {"error": {"code", "message"}}:
400 bad body, 403 self-approval or not an approver, 404 unknown, 409 already decided, 503 the
store is unreachable. Nothing returned holds a secret: statements are masked before they are
submitted, and the token is never echoed.
"""

from __future__ import annotations

import inspect
import json
import re
import traceback
from typing import Any, Awaitable, Callable

from ..approvals import ApprovalError, Broker
from ..telemetry import metrics
from ..telemetry.logs import log
from .http import Request, Response, error_response, json_response
from .token import token_matches

_ROUTE = re.compile(r"^/approvals/([A-Za-z0-9_-]{1,64})(?:/(approve|deny))?/?$")
_QUIET = ("/healthz", "/metrics")
_FIELDS = {"approve": {"approver", "reason", "window"}, "deny": {"approver", "reason"}}


class AdminApi:
    def __init__(self, broker: Broker, token: str, *,
                 render_metrics: Callable[[], str | Awaitable[str]] = metrics.REGISTRY.render,
                 upstreams: Callable[[], Awaitable[dict[str, str]]] | None = None):
        self.broker = broker
        self._token = token
        self.render_metrics = render_metrics
        self.upstreams = upstreams      # -> {"127.0.0.1:5432": "reachable" | "unreachable"}

    async def __call__(self, request: Request) -> Response:
        try:
            response = await self._route(request)
        except ApprovalError as exc:
            response = error_response(exc.status, exc.code, str(exc))
        except Exception as exc:          # a bug here must not take the listener down, nor leak
            log("admin.crashed", level="error", error=f"{type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc))[-4000:])
            response = error_response(500, "internal", "internal error (see the wireproxy log)")
        metrics.ADMIN_REQUESTS.inc(code=str(response.status))
        if response.status >= 300 or request.path not in _QUIET:      # scrapes and probes: no log line each
            log("admin.request", level="info" if response.status < 400 else "warning", method=request.method,
                path=request.path[:200], status=response.status, client=request.client)
        return response

    async def _route(self, request: Request) -> Response:
        if request.path == "/healthz":
            if request.method != "GET":
                return _not_allowed("GET")
            return json_response(200, await _health_of(self))
        if not self._authorized(request):
            return error_response(401, "unauthorized", "a valid bearer token is needed",
                                  [("WWW-Authenticate", 'Bearer realm="wireproxy"')])
        if request.path == "/metrics":
            if request.method != "GET":
                return _not_allowed("GET")
            text = self.render_metrics()
            if inspect.isawaitable(text):       # a worker's: it asks its siblings for theirs
                text = await text
            return Response(200, text.encode("utf-8"), metrics.CONTENT_TYPE)
        if request.path.rstrip("/") == "/approvals":
            if request.method != "GET":
                return _not_allowed("GET")
            state = request.query.get("state", "pending")
            found = await self.broker.approvals(state)
            return json_response(200, {"approvals": [a.to_dict() for a in found]})
        match = _ROUTE.match(request.path)
        if match is None:
            return error_response(404, "not_found", f"no such endpoint: {request.path[:200]}")
        approval_id, action = match.groups()
        if action is None:
            if request.method != "GET":
                return _not_allowed("GET")
            return json_response(200, (await self.broker.get(approval_id)).to_dict())
        if request.method != "POST":
            return _not_allowed("POST")
        body = _body(request, _FIELDS[action])
        if action == "approve":
            decided = await self.broker.approve(approval_id, body.get("approver"), body.get("reason", ""),
                                                body.get("window"))
        else:
            decided = await self.broker.deny(approval_id, body.get("approver"), body.get("reason", ""))
        log(f"admin.{action}", id=approval_id, approver=decided.approver, client=request.client)
        return json_response(200, decided.to_dict())

    def _authorized(self, request: Request) -> bool:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token_matches(presented.strip(), self._token)


def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    try:
        body = json.loads(request.body.decode("utf-8")) if request.body.strip() else None
    except (UnicodeDecodeError, ValueError):
        raise ApprovalError("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApprovalError('the request body must be a JSON object like {"approver": "bob", "reason": "..."}')
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApprovalError(f"unknown field {unknown[0]!r} (expected {', '.join(sorted(allowed))})")
    return body


async def _health_of(api: "AdminApi") -> dict[str, Any]:
    store = api.broker.store
    upstreams = await api.upstreams() if api.upstreams is not None else {}
    healthy = store.connected and all(state == "reachable" for state in upstreams.values())
    # 200 either way: a probe that restarts the proxy would not bring an upstream back.
    return {"status": "ok" if healthy else "degraded", "upstreams": upstreams,
            "approvals_store": store.name, "approvals_store_connected": store.connected}


def _not_allowed(allow: str) -> Response:
    return error_response(405, "method_not_allowed", f"use {allow}", [("Allow", allow)])
