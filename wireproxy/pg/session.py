"""One client connection: two pumps around a PgRelay.

The client pump reads the client, feeds the relay and sends what it queued for the server; the
server pump does the same the other way. The relay decides everything; this file only moves
bytes, connects, and cleans up: when either side ends, the other is closed at once, and a
client that vanishes while the server still owes it answers gets its query cancelled.
"""

from __future__ import annotations

import time

import trio

from protocols.postgres import CancelRequest

from ..config import PostgresListener
from ..telemetry.logs import log
from ..streams import BUFSIZE, OrderedWriter, connect, peer_of
from .cancel import CancelRegistry, send_cancel
from .relay import Phase, PgRelay

_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)
_CLOSED = Phase.CLOSED


class PgSession:
    def __init__(self, client: trio.SocketStream, listener: PostgresListener,
                 cancels: CancelRegistry, judge_factory=None, session_log=None, mask_factory=None):
        self.client = client
        self.listener = listener
        self.cancels = cancels
        self.session_log = session_log
        self.recorder = None
        self.relay = PgRelay(upstream=str(listener.upstream), judge_factory=judge_factory,
                             max_message_size=listener.max_message_size,
                             recording=session_log is not None, mask_factory=mask_factory)
        self.server: trio.SocketStream | None = None
        self.client_out = OrderedWriter(client)
        self.bytes_from_client = 0
        self.bytes_from_server = 0
        host, port = peer_of(client)
        self.peer = f"{host}:{port}"
        self.started = time.monotonic()
        self._registered_key = None

    async def run(self) -> None:
        relay = self.relay
        try:
            await self._startup()
            if relay.cancel_request is not None:
                await self.cancels.forward(relay.cancel_request, self.peer)
                return
            if not relay.wants_upstream:
                return
            if self.session_log is not None and not await self._open_record():
                return
            upstream = self.listener.upstream
            try:
                self.server = await connect(upstream.host, upstream.port, self.listener.connect_timeout)
            except OSError as exc:
                relay.upstream_unreachable(exc.strerror or str(exc))
                log("upstream.unreachable", level="warning", client=self.peer, upstream=str(upstream),
                    error=exc.strerror or str(exc))
                await self._flush_client()
                return
            self.server_out = OrderedWriter(self.server)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._server_pump, nursery.cancel_scope)
                await self._client_pump()
                nursery.cancel_scope.cancel()
        finally:
            await self._close()

    # -------------------------------------------------------------------------------- pumps --

    async def _startup(self) -> None:
        relay = self.relay
        while relay.phase is Phase.STARTUP:
            data = await self._receive_client()
            if not data:
                relay.client_eof()
                return
            relay.client_data(data)
            self._drain_events()
            await self._flush_client()

    async def _client_pump(self) -> None:
        relay = self.relay
        client = self.client
        server_out = self.server_out
        if relay.to_server:                    # the startup packet
            await self._send_server(relay)
        while relay.phase is not _CLOSED:
            try:
                data = await client.receive_some(BUFSIZE)
            except _GONE:
                data = b""
            if not data:
                relay.client_eof()
                break
            self.bytes_from_client += len(data)
            relay.client_data(data)
            if relay.to_server:
                chunk = b"".join(relay.to_server)
                relay.to_server.clear()
                try:
                    await server_out.send(chunk)
                except _GONE:
                    relay.server_eof()
            if relay.to_client:
                await self._flush_client()
            if relay.events:
                self._drain_events()
                if self.recorder is not None and self.recorder.congested:
                    await self.recorder.wait_room()    # the disk is behind: slow this client
        if relay.close_reason in ("client vanished mid-message", "client closed") and relay.busy:
            await self._cancel_running_query()

    async def _server_pump(self, scope: trio.CancelScope) -> None:
        relay = self.relay
        server = self.server
        try:
            while relay.phase is not _CLOSED:
                try:
                    data = await server.receive_some(BUFSIZE)
                except _GONE:
                    data = b""
                if not data:
                    relay.server_eof()
                    await self._flush_client()
                    break
                self.bytes_from_server += len(data)
                relay.server_data(data)
                if relay.to_client:
                    chunk = b"".join(relay.to_client)
                    relay.to_client.clear()
                    try:
                        await self.client_out.send(chunk)
                    except _GONE:
                        relay.client_eof()
                        if relay.busy:
                            await self._cancel_running_query()
                        break
                if relay.to_server:            # what the relay held until the server answered
                    await self._send_server(relay)
                if relay.cancel_upstream:      # a result was cut: stop the query upstream
                    relay.cancel_upstream = False
                    self._nursery.start_soon(self._cancel_then_release)
                if relay.events:
                    self._drain_events()
        finally:
            scope.cancel()

    # ------------------------------------------------------------------------------ helpers --

    async def _open_record(self) -> bool:
        """Open this session's log before anything reaches the upstream; fail closed."""
        from ..sessionlog import LogUnavailable
        startup = self.relay.startup
        try:
            self.recorder = self.session_log.open_session({
                "client_addr": self.peer, "user": startup.user, "database": startup.database,
                "application_name": startup.parameters.get("application_name", ""),
                "upstream": str(self.listener.upstream), "protocol": "postgres"})
        except LogUnavailable as exc:
            self.relay.refuse("58030", f"wireproxy cannot record this session: {exc}", "session log unavailable")
            log("session.refused", level="error", client=self.peer, reason=str(exc))
            await self._flush_client()
            return False
        recorder = self.recorder
        self.relay.gate = lambda: recorder.failed
        if self.relay.masker is not None:               # bound parameters are recorded masked
            self.relay.mask_param = self.relay.masker.mask_text
        if self.session_log.max_result_bytes:
            self.relay.collect_results(self.session_log.max_result_bytes)
        return True

    async def _receive_client(self) -> bytes:
        try:
            data = await self.client.receive_some(BUFSIZE)
        except _GONE:
            return b""
        self.bytes_from_client += len(data)
        return data

    async def _send_server(self, relay: PgRelay) -> None:
        chunk = b"".join(relay.to_server)
        relay.to_server.clear()
        try:
            await self.server_out.send(chunk)
        except _GONE:
            relay.server_eof()

    async def _flush_client(self) -> None:
        relay = self.relay
        if not relay.to_client:
            return
        chunk = b"".join(relay.to_client)
        relay.to_client.clear()
        try:
            await self.client_out.send(chunk)
        except _GONE:
            relay.client_eof()

    async def _cancel_running_query(self) -> None:
        """The client is gone but its query runs on: ask the upstream to cancel it."""
        with trio.CancelScope(shield=True):
            await self._cancel_query("client gone")

    async def _cancel_then_release(self) -> None:
        await self._cancel_query("result cut")
        self.relay.cancel_sent()
        if self.relay.to_server:
            await self._send_server(self.relay)

    async def _cancel_query(self, why: str) -> None:
        key = self.relay.backend_key
        if key is None:
            return
        await send_cancel(self.listener.upstream, CancelRequest(*key), timeout=2.0)
        log("session.query_cancelled", client=self.peer, backend_pid=key[0], why=why)

    def _drain_events(self) -> None:
        recorder = self.recorder
        for event in self.relay.events:
            kind = event.get("event")
            if kind == "limit":
                log("statement.limit", level="warning", client=self.peer, user=self._user(),
                    rule=event["rule"], why=event["why"], action=event["action"])
            elif kind == "statement":
                if recorder is not None:
                    del event["event"]
                    recorder.record(event)
            elif kind == "decision":
                log("statement." + event["action"], client=self.peer, user=self._user(),
                    rule=event["rule"], statement=event["statement"], path=event["path"])
            elif kind == "ready":
                if self.relay.backend_key is not None and self._registered_key is None:
                    self._registered_key = self.relay.backend_key
                    self.cancels.add(*self._registered_key, self.listener.upstream)
            elif kind == "startup":
                log("connection.open", client=self.peer, user=event["user"], database=event["database"],
                    application_name=event["application_name"], listener=str(self.listener.listen),
                    upstream=str(self.listener.upstream))
        self.relay.events.clear()

    def _user(self) -> str:
        return self.relay.startup.user if self.relay.startup else ""

    async def _close(self) -> None:
        relay = self.relay
        if self._registered_key is not None:
            self.cancels.remove(*self._registered_key, self.listener.upstream)
        with trio.CancelScope(shield=True):
            if self.server is not None:
                await trio.aclose_forcefully(self.server)
            await trio.aclose_forcefully(self.client)
        if self.recorder is not None:
            self.recorder.close({"reason": relay.close_reason or "closed",
                                 "bytes_from_client": self.bytes_from_client,
                                 "bytes_from_server": self.bytes_from_server})
        if relay.startup is not None:
            startup = relay.startup
            log("connection.close", client=self.peer, session=self.recorder.id if self.recorder else None, user=startup.user, database=startup.database,
                application_name=startup.parameters.get("application_name", ""),
                bytes_from_client=self.bytes_from_client, bytes_from_server=self.bytes_from_server,
                duration_s=round(time.monotonic() - self.started, 3),
                reason=relay.close_reason or "closed")
