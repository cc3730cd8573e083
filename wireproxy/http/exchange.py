"""One request through the proxy: identity, rate limit, judging, masking, forwarding, recording.

The order matters: who is calling (401 for an unknown key) and how fast (429) first; then the
request content is judged on the text the client sent (403 when blocked, held when approve),
then masked (so PII and secrets never leave), then forwarded; the answer is filtered on its way
back (masked, MCP results masked and tools/list filtered) and the exchange recorded as masked.
"""

from __future__ import annotations

import json
import time
from urllib.parse import unquote_plus
from typing import Any

import trio

from protocols.http import jsonrpc
from wireproxy.policy import Action, Decision
from wireproxy.telemetry.logs import log

from ..mcp.inspect import McpInspector
from .approval import ApprovalRequest, approvers_of, fingerprint, hold
from .bodies import make_filter
from .client import Origin, UpstreamError
from .content import ALLOW
from .errors import HttpError
from .identity import identify, presented_key, proxy_key, upstream_auth_header, without_keys
from .jsonwalk import map_strings, model_of, text_of
from .serverconn import Request, ServerConnection

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                        "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade", "host",
                        "content-length", "expect"})     # wireproxy reads the body whole: no 100-continue upstream


def _hop_free(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    named = {t.strip().lower() for k, v in headers if k == "connection" for t in v.split(",")}
    return [(k, v) for k, v in headers if k not in HOP_BY_HOP and k not in named]


def _json_value(request: Request) -> Any:
    body = request.body
    if not body:
        return None
    ct = (request.header("content-type") or "").lower()
    if "json" not in ct and body[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        if "json" in ct:
            raise HttpError(400, "the request body is not valid JSON") from None
        return None


class Exchange:
    def __init__(self, proxy, conn: ServerConnection, request: Request, origin: Origin, target: str, ctx):
        self.proxy = proxy
        self.conn = conn
        self.request = request
        self.origin = origin
        self.target = target
        self.ctx = ctx                                   # per-connection state (ConnectionContext)
        self.record: dict = {"method": request.method, "url": f"{origin}{target.split('?')[0]}",
                             "protocol": "http"}
        self.started = time.perf_counter()
        self.user: str | None = None
        self.groups: frozenset[str] = frozenset()        # the client entry's, for rules and masks
        self.auth_style: str | None = None
        self.counts_tokens = False

    async def run(self) -> None:
        try:
            await self._run()
        except HttpError as exc:
            self.record.update(status=exc.status, error=exc.message)
            if exc.rule:
                self.record.setdefault("rules", [exc.rule])
            await self.conn.send_error(exc, self._overhead())
        except UpstreamError as exc:
            self.record.update(status=exc.status, error=str(exc))
            log("http.upstream_error", level="warning", client=self.conn.peer, upstream=str(self.origin),
                status=exc.status, error=str(exc))
            await self.conn.send_error(HttpError(exc.status, str(exc)), self._overhead())
        finally:
            record = self.record
            record["duration_ms"] = round((time.perf_counter() - self.started) * 1000, 3)
            status = record.get("status")
            if record.get("decision") or not isinstance(status, int) or status >= 400:
                # the judged and the failed; plain successes only in the session log (hot path)
                log("http.exchange", level="info" if isinstance(status, int) and status < 500 else "warning",
                    client=self.conn.peer, user=self.user, method=record["method"], url=record["url"],
                    status=status, decision=record.get("decision"), rules=record.get("rules"),
                    duration_ms=record["duration_ms"])
            self.ctx.record(record, self.user)

    async def _run(self) -> None:
        listener = self.proxy.settings
        client = self._identify()
        self.user = client.name if client is not None else None
        self.groups = client.groups if client is not None else frozenset()
        if self.user:
            self.record["user"] = self.user
        who = self.user or self.conn.peer.rsplit(":", 1)[0]
        rpm = (client.requests_per_minute if client else None) or listener.requests_per_minute
        tpm = (client.tokens_per_minute if client else None) or listener.tokens_per_minute
        wait = self.proxy.limiter.admit(who, rpm, tpm)
        if wait > 0:
            raise HttpError(429, f"rate limit for {who!r} reached; retry in {wait:.1f} s",
                            headers=[("retry-after", str(max(1, round(wait))))])
        await self.ctx.ensure_recording(self.user)
        view = self.proxy.rules.view(self.user, self.groups)
        self.counts_tokens = bool(tpm)
        if not (view.inspects or self.ctx.recording or tpm):   # nothing to judge, mask, record or count
            await self._forward(self.request.body, view, None)
            return
        value = _json_value(self.request)
        batch = jsonrpc.from_value(value) if value is not None else None
        body = self.request.body
        mcp = None
        if batch is not None:
            self.record["protocol"] = "mcp"
            self.record["mcp"] = [m.get("method") for m in batch.messages if "method" in m]
            mcp = McpInspector(view, user=self.user, groups=self.groups, record=self.ctx.record_entry)
            if await self._judge_mcp(batch, mcp):
                return
        elif view.inspects:
            body = await self._judge_llm(view, value, body)
        tokens = await self._forward(body, view, mcp)
        if tokens:
            self.proxy.limiter.spend_tokens(who, tpm, tokens)
            self.record["tokens"] = tokens

    def _identify(self):
        keys = self.proxy.keys
        presented, style = presented_key(self.request.headers)
        self.auth_style = style
        if not keys:
            return None
        if presented is None:                  # a forward proxy's absolute-form request
            presented = proxy_key(self.request.headers)
        client = identify(keys, presented)
        if client is None:
            why = "no API key" if presented is None else "an unknown API key"
            raise HttpError(401, f"wireproxy: the request carries {why}; use a key issued in the wireproxy config",
                            type="authentication_error")
        return client

    # -- judging ------------------------------------------------------------------------------

    async def _judge_llm(self, view, value: Any, body: bytes) -> bytes:
        text = text_of(value) if value is not None else body.decode("utf-8", "replace")
        if "?" in self.target:             # a secret in a query string is still a secret sent
            text = f"{unquote_plus(self.target.partition('?')[2])}\n{text}"
        model = model_of(value)
        if model:
            self.record["model"] = model
        decision = view.judge.judge(text, user=self.user, groups=self.groups, model=model)
        await self._enforce(decision, view.mask_text(text) if view.mask_text else text, "http")
        if view.mask_text is None or value is None:
            self.record["request"] = self._clip(value if value is not None else text)
            return body
        masked, changed = map_strings(value, view.mask_text)
        self.record["request"] = self._clip(masked)
        if changed:
            self.record["request_masked"] = True
            return json.dumps(masked, ensure_ascii=False).encode("utf-8")
        return body

    async def _enforce(self, decision: Decision, statement: str, source: str) -> None:
        self._note(decision)
        if decision.action == Action.BLOCK:
            log("http.block", client=self.conn.peer, user=self.user, rule=decision.rule_id, url=self.record["url"])
            raise HttpError(403, decision.client_message(), type="blocked", rule=decision.rule_id)
        if decision.action == Action.APPROVE:
            approved, why = await self._hold(decision, statement, source)
            self.record["approval"] = {"outcome": "approved" if approved else "denied", "reason": why}
            if not approved:
                raise HttpError(403, why, type="blocked", rule=decision.rule_id)
        elif decision.action == Action.AUDIT:
            log("http.audit", client=self.conn.peer, user=self.user, rule=decision.rule_id, url=self.record["url"])

    def _note(self, decision: Decision) -> None:
        if decision is ALLOW or decision.rule_id is None:
            return
        self.record["decision"] = str(decision.action)
        self.record["rules"] = list(decision.matched or (decision.rule_id,))

    async def _hold(self, decision: Decision, statement: str, source: str) -> tuple[bool, str]:
        request = ApprovalRequest(
            user=self.user or "", database=None, statement=statement[:8192], rule_id=decision.rule_id,
            approvers=approvers_of(decision), timeout=self.proxy.settings.approval_timeout,
            fingerprint=fingerprint(source, decision.rule_id, statement), source=source,
            session_id=self.ctx.session_id, client=self.conn.peer)
        gone = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.conn.watch_for_close, gone)
            try:
                return await hold(self.proxy.approvals, request, gone)
            finally:
                nursery.cancel_scope.cancel()

    async def _judge_mcp(self, batch, mcp) -> bool:
        """Judge every tools/call of a JSON-RPC body; True when wireproxy answered it itself."""
        replies = []
        worst = ALLOW
        for message in batch.messages:
            verdict = mcp.client_message(message)
            if verdict.decision.action > worst.action:
                worst = verdict.decision
            if verdict.held:
                approved, why = await self._hold(verdict.decision, verdict.statement, "mcp")
                reply = mcp.answer_held(message, verdict, approved, why)
                if reply is not None:
                    verdict.reply = reply
            if verdict.reply is not None:
                replies.append(verdict.reply)
        self._note(worst)
        if not replies:
            return False
        if batch.is_batch and len(replies) < sum(1 for m in batch.messages if jsonrpc.kind(m) == "request"):
            answered = {json.dumps(r.get("id")) for r in replies}
            replies += [jsonrpc.error(m.get("id"), jsonrpc.INVALID_REQUEST,
                                      "not sent: another call in this batch was blocked by wireproxy")
                        for m in batch.messages
                        if jsonrpc.kind(m) == "request" and json.dumps(m.get("id")) not in answered]
        body = jsonrpc.encode(replies, batch.is_batch)
        self.record["status"] = 200
        await self.conn.send_whole(200, [("content-type", "application/json")] + self._overhead(), body)
        return True

    # -- forwarding ---------------------------------------------------------------------------

    def _upstream_headers(self, body: bytes, filtering: bool) -> list[tuple[str, str]]:
        headers = _hop_free(self.request.headers)
        proxy = self.proxy
        if proxy.keys or proxy.upstream_key:
            headers = without_keys(headers)
            if proxy.upstream_key:
                style = proxy.settings.upstream_auth
                if style == "auto":
                    style = self.auth_style or "bearer"
                headers.append(upstream_auth_header(style, proxy.upstream_key))
        if filtering:
            headers = [(k, v) for k, v in headers if k != "accept-encoding"] + [("accept-encoding", "identity")]
        headers.insert(0, ("host", self.origin.host_header))
        if body or self.request.method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            headers.append(("content-length", str(len(body))))
        return headers

    def _overhead(self, response=None) -> list[tuple[str, str]]:
        now = trio.current_time()
        if response is None:
            spent = now - self.request.received_at
        else:
            spent = (response.sent_at - self.request.received_at) + (now - response.head_at)
        return [("x-wireproxy-overhead-ms", f"{max(spent, 0) * 1000:.3f}")]

    async def _forward(self, body: bytes, view, mcp) -> int | None:
        recording = self.ctx.recording or self.counts_tokens      # reading usage needs the body seen too
        filtering = view.mask_text is not None or mcp is not None or recording
        headers = self._upstream_headers(body, filtering)
        async with self.proxy.client.request(self.origin, self.request.method, self.target, headers, body) as response:
            self.record["status"] = response.status
            ctype = (response.header(b"content-type") or b"").decode("latin-1")
            encoding = (response.header(b"content-encoding") or b"identity").decode("latin-1").lower()
            body_filter = None
            if self.request.method != "HEAD":
                body_filter = make_filter(ctype, view.mask_text, mcp=mcp, record=recording,
                                          record_chars=self.proxy.settings.record_body_bytes)
            if body_filter is not None and encoding not in ("identity", ""):
                if view.mask_text is not None or mcp is not None:
                    raise HttpError(502, f"upstream sent a {encoding}-encoded body, which wireproxy cannot inspect")
                body_filter = None
            out_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
            out_headers = [(k, v) for k, v in out_headers if k.lower() not in HOP_BY_HOP or
                           (k.lower() == "content-length" and body_filter is None)]
            await self.conn.send_head(response.status, out_headers + self._overhead(response), hold=True)
            async for chunk in response.chunks(on_wait=self.conn.flush):
                out = body_filter.feed(chunk) if body_filter is not None else chunk
                if out:
                    await self.conn.send_data(out)
            if body_filter is not None:
                await self.conn.send_data(body_filter.end())
                self.record.update(body_filter.recorded())
            await self.conn.send_end()
            return body_filter.tokens if body_filter is not None else None

    def _clip(self, value: Any) -> Any:
        limit = self.proxy.settings.record_body_bytes
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(text) <= limit:
            return value
        return text[:limit] + f"... ({len(text)} chars)"
