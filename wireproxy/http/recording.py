"""A client connection's session log: opened at its first request (after the client is known),
one record per exchange and per MCP tool call, closed with the connection. Fail closed: a log
that cannot be written refuses the request (503) unless the log is `fail_open`."""

from __future__ import annotations

from typing import Any

from wireproxy.telemetry.logs import log

from .errors import HttpError


class ConnectionContext:
    def __init__(self, proxy, peer: str, tunnel=None):
        self.proxy = proxy
        self.peer = peer
        self.tunnel = tunnel
        self.recorder = None
        self.exchanges = 0

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    @property
    def session_id(self) -> str | None:
        return self.recorder.id if self.recorder is not None else None

    async def ensure_recording(self, user: str | None) -> None:
        session_log = self.proxy.session_log
        if session_log is None:
            return
        if self.recorder is None:
            from wireproxy.sessionlog import LogUnavailable
            settings = self.proxy.settings
            upstream = settings.upstream or (str(self.tunnel) if self.tunnel else "forward proxy")
            try:
                self.recorder = session_log.open_session({
                    "client_addr": self.peer, "user": user, "protocol": "http",
                    "upstream": upstream, "listener": str(settings.listen)})
            except LogUnavailable as exc:
                log("session.refused", level="error", client=self.peer, reason=str(exc))
                raise HttpError(503, f"wireproxy cannot record this session: {exc}") from None
        failed = self.recorder.failed
        if failed:
            raise HttpError(503, f"wireproxy cannot record this session: {failed}")

    def record_entry(self, entry: dict[str, Any]) -> None:
        if self.recorder is not None:
            self.recorder.record(entry)

    def record(self, entry: dict[str, Any], user: str | None) -> None:
        self.exchanges += 1
        self.record_entry(entry)

    def close(self, conn) -> None:
        if self.recorder is not None:
            self.recorder.close({"reason": "closed", "exchanges": self.exchanges,
                                 "bytes_in": conn.bytes_in, "bytes_out": conn.bytes_out})
