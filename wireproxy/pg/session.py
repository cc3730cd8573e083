"""One client connection: two pumps around a PgRelay.

The client pump reads the client and feeds the relay; the server pump does the same the other
way. After each read, `deliver` carries out what the relay left: bytes to either side (one send
each), actions (cancel a query, hold a statement for approval) and events (logs, the session
record). The relay decides everything; this file only moves bytes, connects, and cleans up: when
either side ends the other is closed at once, and a client that vanishes while the server still
owes it answers gets its query cancelled.
"""

from __future__ import annotations

import time

import trio

from protocols.postgres import CancelRequest
from protocols.postgres.login import PasswordLogin

from ..config import PostgresListener
from ..streams import BUFSIZE, OrderedWriter, connect, direct, peer_of
from ..policy import Action
from ..telemetry import metrics
from ..telemetry.logs import log
from .access import CredentialsUnavailable
from .cancel import CancelRegistry, send_cancel
from .approval import ApprovalWait
from .protocol import AwaitApproval, CancelQuery, Decided, EndSession, LimitHit, Phase, Ready, Recorded, Started
from .relay import PgRelay
from .upstream import UpstreamLoginFailed, login_upstream, secure_upstream

_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)
STATEMENT_TALLY = [metrics.STATEMENTS.labels(decision=a.name.lower()) for a in Action]
_LINGER_SECONDS = 2.0            # reading what a refused client still sends, so it reads our error
_LINGER_BYTES = 1 << 26
AUTHENTICATION_TIMEOUT = 60.0    # PostgreSQL's authentication_timeout default


class PgSession:
    def __init__(self, client, listener: PostgresListener, cancels: CancelRegistry, *,
                 judge_factory=None, mask_factory=None, session_log=None, broker=None,
                 connect_upstream=connect, cancel_upstream=send_cancel, access=None, tls=None):
        self.client = client
        self.access = access                          # wireproxy authenticates (None: passthrough)
        self.tls = tls                                # ServerTLS towards clients, or None
        self.listener = listener
        self.cancels = cancels
        self.session_log = session_log
        self.broker = broker                          # approvals: None holds nothing (approve blocks)
        self.approval: ApprovalWait | None = None
        self.recorder = None
        self.session_id: str | None = None
        self.connect_upstream = connect_upstream      # (host, port, timeout) -> stream
        self.cancel_upstream = cancel_upstream        # (address, CancelRequest, timeout) -> None
        self.relay = PgRelay(
            upstream=str(listener.upstream), judge_factory=judge_factory, mask_factory=mask_factory,
            max_message_size=listener.max_message_size, recording=session_log is not None,
            log_gate=self._log_failure if session_log is not None else None,
            max_result_bytes=session_log.max_result_bytes if session_log is not None else 0,
            approvals=broker is not None, tally=STATEMENT_TALLY, access=access,
            tls=tls is not None, require_tls=listener.require_tls,
            allow_replication=listener.allow_replication)
        self.server = None
        self.client_out = OrderedWriter(client)
        self.server_out: OrderedWriter | None = None
        self.bytes_from_client = 0
        self.bytes_from_server = 0
        host, port = peer_of(client)
        self.host = host
        self.peer = f"{host}:{port}"
        self.started = time.monotonic()
        self._registered_key = None
        self._nursery: trio.Nursery | None = None
        self.closed = False
        self._on_event = {Started: self._started, Ready: self._ready, Decided: self._decided,
                          LimitHit: self._limit_hit, Recorded: self._recorded}

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
                self.server = await self.connect_upstream(upstream.host, upstream.port,
                                                          self.listener.connect_timeout)
                self.server = await secure_upstream(self.server, self.listener,
                                                    timeout=self.listener.connect_timeout)
            except OSError as exc:
                relay.upstream_unreachable(exc.strerror or str(exc))
                log("upstream.unreachable", level="warning", client=self.peer, upstream=str(upstream),
                    error=exc.strerror or str(exc))
                await self.deliver()
                return
            if relay.upstream_startup is not None and not await self._login_upstream():
                return
            self.server_out = OrderedWriter(direct(self.server))
            self.client_out = OrderedWriter(direct(self.client))
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._server_pump, nursery.cancel_scope)
                await self._client_pump()
                nursery.cancel_scope.cancel()
            if relay.close_reason in ("client vanished mid-message", "client closed") and relay.busy:
                with trio.CancelScope(shield=True):
                    await self._cancel_query("client gone")
        finally:
            await self.close()

    # -------------------------------------------------------------------------------- pumps --

    async def _startup(self) -> None:
        """Until the client's startup (and its login to wireproxy) is done, within
        AUTHENTICATION_TIMEOUT, as PostgreSQL's authentication_timeout."""
        relay = self.relay
        with trio.move_on_after(AUTHENTICATION_TIMEOUT) as scope:
            while relay.phase is Phase.STARTUP:
                if not await self._read_startup():
                    return
                if relay.start_tls and not await self._start_tls():
                    return
            if relay.phase is Phase.LOGIN:
                async with self.access.gate(self.host) as waited:
                    if waited:
                        log("auth.throttled", level="warning", client=self.peer, delay_s=round(waited, 3))
                    relay.login.started = True
                    await self.deliver()                     # the Authentication request
                    while relay.phase is Phase.LOGIN:
                        if not await self._read_startup():
                            return
        if scope.cancelled_caught:
            relay.refuse("08006", "wireproxy: the client did not finish its startup in time", "startup timeout")
            await self.deliver()

    async def _read_startup(self) -> bool:
        relay = self.relay
        data = await self._receive(self.client)
        if not data:
            relay.client_eof()
            return False
        self.bytes_from_client += len(data)
        relay.client_data(data)
        if relay.login_failure is not None:
            self._login_failed()
        if relay.phase is not Phase.LOGIN or relay.login.started:
            await self.deliver()          # the login's request waits for the gate (below)
        return True

    async def _start_tls(self) -> bool:
        """'S' is out: the handshake, then everything on this connection is encrypted."""
        stream = trio.SSLStream(self.client, self.tls.context, server_side=True)
        try:
            with trio.fail_after(self.listener.connect_timeout):
                await stream.do_handshake()
        except (trio.TooSlowError, *_GONE) as exc:
            cause = getattr(exc, "__cause__", None)
            log("tls.handshake_failed", level="warning", client=self.peer,
                error=str(getattr(cause, "reason", None) or cause or "timed out"))
            self.relay.close("TLS handshake failed")
            return False
        self.client = stream
        self.client_out = OrderedWriter(stream)
        self.relay.tls_started()
        return True

    def _login_failed(self) -> None:
        relay = self.relay
        self.access.limiter.failed(self.host)
        log("auth.failed", level="warning", client=self.peer, user=relay.startup.user,
            method=relay.login.method, reason=relay.login_failure)
        if self.session_log is not None:
            from ..sessionlog import LogUnavailable
            try:
                recorder = self.session_log.open_session({
                    "client_addr": self.peer, "user": relay.startup.user, "database": relay.startup.database,
                    "auth": "failed", "upstream": str(self.listener.upstream), "protocol": "postgres"})
                recorder.close({"reason": f"authentication failed ({relay.login.method}): {relay.login_failure}"})
            except LogUnavailable as exc:
                log("session.unrecorded", level="error", client=self.peer, reason=str(exc))

    async def _login_upstream(self) -> bool:
        """Log in upstream with the credentials wireproxy holds; the client never sees them."""
        relay = self.relay
        try:
            password = self.access.upstream_password()
            data = await login_upstream(self.server, relay.upstream_startup,
                                        PasswordLogin(relay.upstream_role, password), self.listener.connect_timeout)
        except (CredentialsUnavailable, UpstreamLoginFailed) as exc:
            log("upstream.login_failed", level="error", client=self.peer, user=self.user,
                upstream=str(self.listener.upstream), role=relay.upstream_role, error=str(exc))
            relay.refuse("08004", "wireproxy could not log in to the upstream server (see the wireproxy log)",
                         "upstream login failed")
            await self.deliver()
            return False
        relay.upstream_logged_in(data)
        return True

    async def _client_pump(self) -> None:
        relay, client = self.relay, direct(self.client)
        await self.deliver()                  # the startup packet
        while not self.closed:
            data = await self._receive(client)
            if not data:
                relay.client_eof()
                break
            self.bytes_from_client += len(data)
            relay.client_data(data)
            await self.deliver()
            if self.recorder is not None and self.recorder.congested:
                await self.recorder.wait_room()    # the disk is behind: slow this client

    async def _server_pump(self, scope: trio.CancelScope) -> None:
        relay, server = self.relay, direct(self.server)
        try:
            while not self.closed:
                data = await self._receive(server)
                if not data:
                    relay.server_eof()
                    await self.deliver()
                    break
                self.bytes_from_server += len(data)
                relay.server_data(data)
                await self.deliver()
        finally:
            scope.cancel()

    @staticmethod
    async def _receive(stream) -> bytes:
        try:
            return await stream.receive_some(BUFSIZE)
        except _GONE:
            return b""

    async def deliver(self) -> None:
        """Carry out what the relay left: its bytes for each side, its actions, its events."""
        relay = self.relay
        if relay.to_server and self.server_out is not None:
            chunk = b"".join(relay.to_server)
            relay.to_server.clear()
            try:
                await self.server_out.send(chunk)
            except _GONE:
                relay.server_eof()
        if relay.to_client:
            chunk = b"".join(relay.to_client)
            relay.to_client.clear()
            try:
                await self.client_out.send(chunk)
            except _GONE:
                relay.client_eof()
        if relay.actions:
            actions = relay.actions[:]
            relay.actions.clear()
            for action in actions:
                self._act(action)
        if relay.events:
            events = relay.events[:]
            relay.events.clear()
            for event in events:
                self._on_event[type(event)](event)

    # ------------------------------------------------------------------------------ actions --

    def _act(self, action) -> None:
        if isinstance(action, EndSession):
            self.closed = True                    # both pumps stop; run() then closes both sides
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
        elif isinstance(action, CancelQuery):
            self._nursery.start_soon(self._cancel_then_release, action.why)
        elif isinstance(action, AwaitApproval):
            self.approval = ApprovalWait(self, self.broker)
            self._nursery.start_soon(self.approval.run, action)
        else:
            raise RuntimeError(f"no pump carries out {action!r}")

    async def _cancel_then_release(self, why: str) -> None:
        await self._cancel_query(why)
        self.relay.cancel_sent()
        await self.deliver()

    async def _cancel_query(self, why: str) -> None:
        key = self.relay.backend_key
        if key is None:
            return
        await self.cancel_upstream(self.listener.upstream, CancelRequest(*key), timeout=2.0)
        log("session.query_cancelled", client=self.peer, backend_pid=key[0], why=why)

    # ------------------------------------------------------------------------------- events --

    def _started(self, event: Started) -> None:
        log("connection.open", client=self.peer, user=event.user, auth=event.auth or "passthrough",
            tls=self.relay.tls_active, database=event.database,
            application_name=event.application_name, listener=str(self.listener.listen),
            upstream=str(self.listener.upstream))

    def _ready(self, event: Ready) -> None:
        if self.relay.backend_key is not None and self._registered_key is None:
            self._registered_key = self.relay.backend_key
            self.cancels.add(*self._registered_key, self.listener.upstream, self._intercept_cancel)

    def _decided(self, event: Decided) -> None:
        log("statement." + event.action, client=self.peer, user=self.user, rule=event.rule,
            statement=event.statement, path=event.path)

    def _limit_hit(self, event: LimitHit) -> None:
        log("statement.limit", level="warning", client=self.peer, user=self.user, rule=event.rule,
            why=event.why, action=event.action)

    def _recorded(self, event: Recorded) -> None:
        if self.recorder is not None:
            self.recorder.record(event.record)

    # ------------------------------------------------------------------------------ helpers --

    def _intercept_cancel(self) -> bool:
        return self.approval is not None and self.approval.cancel()

    @property
    def user(self) -> str:
        """Who the session is: the authenticated identity, else the user name claimed."""
        relay = self.relay
        if relay.identity is not None:
            return relay.identity.name
        return relay.startup.user if relay.startup else ""

    def record(self, record: dict) -> None:
        """A record of this session's own (approvals): into its session log, if it has one."""
        if self.recorder is not None:
            self.recorder.record(record)

    def _log_failure(self) -> str | None:
        return self.recorder.failed if self.recorder is not None else None

    async def _open_record(self) -> bool:
        """Open this session's log before anything reaches the upstream; fail closed."""
        from ..sessionlog import LogUnavailable
        startup = self.relay.startup
        try:
            header = {"client_addr": self.peer, "user": self.user, "database": startup.database,
                      "application_name": startup.parameters.get("application_name", ""),
                      "upstream": str(self.listener.upstream), "protocol": "postgres"}
            identity = self.relay.identity
            if identity is not None and identity.method != "claimed":
                header.update(auth=identity.method, groups=sorted(identity.groups))
            self.recorder = self.session_log.open_session(header)
            self.session_id = self.recorder.id
        except LogUnavailable as exc:
            self.relay.refuse("58030", f"wireproxy cannot record this session: {exc}", "session log unavailable")
            log("session.refused", level="error", client=self.peer, reason=str(exc))
            await self.deliver()
            return False
        return True

    async def refuse(self, sqlstate: str, message: str, reason: str) -> None:
        """Turn the client away before anything else (too many connections, shutting down)."""
        self.relay.refuse(sqlstate, message, reason)
        await self.deliver()
        await self.close()

    async def close(self) -> None:
        relay = self.relay
        if self._registered_key is not None:
            self.cancels.remove(*self._registered_key, self.listener.upstream)
            self._registered_key = None
        with trio.CancelScope(shield=True):
            if self.server is not None:
                await trio.aclose_forcefully(self.server)
            if relay.close_reason == "malformed client input":
                await self._linger()
            await trio.aclose_forcefully(self.client)
        if self.recorder is not None:
            self.recorder.close({"reason": relay.close_reason or "closed",
                                 "bytes_from_client": self.bytes_from_client,
                                 "bytes_from_server": self.bytes_from_server})
            self.recorder = None
        if relay.startup is not None:
            startup = relay.startup
            log("connection.close", client=self.peer, session=self.session_id, user=self.user,
                database=startup.database, application_name=startup.parameters.get("application_name", ""),
                bytes_from_client=self.bytes_from_client, bytes_from_server=self.bytes_from_server,
                duration_s=round(time.monotonic() - self.started, 3), reason=relay.close_reason or "closed")

    async def _linger(self) -> None:
        """A client refused mid-message may still be writing: closing now would reset the
        connection and lose our error on its side. Say we are done, then read what it still
        sends (bounded) until it closes."""
        try:
            await self.client.send_eof()
        except (*_GONE, AttributeError, OSError):
            return
        seen = 0
        with trio.move_on_after(_LINGER_SECONDS):
            while seen < _LINGER_BYTES:
                data = await self._receive(self.client)
                if not data:
                    break
                seen += len(data)
