"""PgRelay: the Postgres session as a pure object. Bytes in, bytes out, no I/O.

The session's pumps feed it what they read (`client_data`, `server_data`) and carry out what it
leaves in its outboxes: `to_client`, `to_server` (bytes, sent in order), `actions` (cancel the
running query, hold a statement for approval) and `events` (typed records for logs and the
session log). `close_reason` set means: flush and close.

The relay is where the collaborators are wired together; each owns one concern:
  conversation.py  which answers the server owes and which one each server message is
  enforcement.py   judging statements, substituting the blocked ones, swapping their errors
  rowmasks.py      row plans and masked rows, COPY data, notices
  limits.py        counting rows of limited statements, cutting results
  recording.py     the statement records of the session log
  lookups.py       the proxy's own catalog queries, in band
  holds.py         client input kept back while something is awaited
  frontdoor.py     the client's login to wireproxy, when wireproxy authenticates (access.py)
A listener with nothing to judge, mask or record takes the plain path (plain.py): messages are
framed and forwarded, and only the sync points are counted.
"""

from __future__ import annotations

import time

from protocols.postgres import (CancelRequest, ErrorResponse, Framer, GSSENCRequest, NoticeResponse,
                                Parse, ProtocolError, SSLRequest, StartupMessage, decode_startup)
from protocols.postgres.framing import DEFAULT_MAX_MESSAGE_SIZE

from ..auth import Identity
from ..policy import Action
from ..policy.strict import StrictColumns
from . import client_side, server_side
from .access import NoUpstreamRole
from .conversation import Conversation
from .enforcement import Enforcer, unparseable
from .holds import Holds
from .limits import VolumeLimits
from .lookups import Lookup
from .plain import PlainPath
from .protocol import (COPY_DATA, DATA_ROW, AwaitApproval, CancelQuery, Decided, EndSession, Phase, Ready,
                       Started, Wait)
from .recording import Recorder
from .rowmasks import RowMasks
from .startup_settings import BadOptions, as_set, settings_of, wants_replication

SERVER_MAX_MESSAGE_SIZE = 1 << 30 | 1 << 20   # a value may be 1 GB; allow its framing too
_RAW_ROWS_AND_COPY = frozenset({DATA_ROW, COPY_DATA})
_RAW_COPY = frozenset({COPY_DATA})
_RAW_ROWS = frozenset({DATA_ROW})
_FRAMED = frozenset()

__all__ = ["PgRelay", "Phase", "Wait"]


class PgRelay:
    def __init__(self, *, upstream: str, judge_factory=None, mask_factory=None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, clock=time.monotonic,
                 recording: bool = False, log_gate=None, max_result_bytes: int = 0,
                 approvals: bool = False, tally=None, access=None, tls: bool = False,
                 require_tls: bool = False, allow_replication: bool = False):
        self.upstream = upstream
        self.phase = Phase.STARTUP
        self.client = Framer(max_message_size, passthrough={COPY_DATA}, startup=True)
        self.server = Framer(SERVER_MAX_MESSAGE_SIZE, passthrough=_RAW_ROWS_AND_COPY)
        self.to_client: list[bytes] = []
        self.to_server: list[bytes] = []
        self.events: list = []
        self.actions: list = []
        self.close_reason: str | None = None
        self.startup: StartupMessage | None = None
        self.cancel_request: CancelRequest | None = None
        self.backend_key: tuple[int, bytes] | None = None
        self.server_said_fatal = False     # the server ended the session with its own FATAL
        self.conversation = Conversation(full=False)
        self.holds = Holds()
        self.clock = clock
        self._factories = (judge_factory, mask_factory)
        self._recording = (recording, log_gate, max_result_bytes)
        self.approvals = approvals         # a broker is there: `approve` holds instead of blocking
        self.tally = tally                 # statements counted by decision (metrics)
        self.enforcer: Enforcer | None = None
        self.masks: RowMasks | None = None
        self.limits = VolumeLimits(self.events.append)
        self.recorder: Recorder | None = None
        self.lookups = 0                   # our own queries not yet answered
        self.muted = False                 # a cut result: the client already has its error
        self.awaiting: tuple | None = None # (sql, decision) of the statement held for approval
        self.path = PlainPath(self)
        self.access = access               # wireproxy authenticates clients (None: passthrough)
        self.tls, self.require_tls = tls, require_tls
        self.allow_replication = allow_replication
        self.start_tls = False             # 'S' answered: the pump does the TLS handshake now
        self.tls_active = False
        self.login = None                  # FrontLogin while the client logs in to wireproxy
        self.login_failure: str | None = None
        self.identity: Identity | None = None
        self.upstream_role: str | None = None
        self.upstream_startup: bytes | None = None   # ours to send: the pump logs in upstream
        self._early: list = []             # client input after its login, before the upstream's

    # ------------------------------------------------------------------ what the pumps call --

    @property
    def wants_upstream(self) -> bool:
        """A StartupMessage arrived: the pump connects to the upstream and flushes to_server."""
        return self.phase is Phase.AUTH and self.startup is not None

    @property
    def busy(self) -> bool:
        """The server owes answers: a vanishing client should cancel the running query."""
        return self.conversation.busy

    @property
    def pending(self):
        """The answers expected, one per forwarded message (a plain relay counts only its sync
        points, and keeps no expectations)."""
        return self.conversation.pending if self.conversation.full else ()

    @property
    def discarding(self) -> bool:
        return self.conversation.discarding

    @property
    def transaction_status(self) -> str:
        return self.conversation.transaction_status

    def client_data(self, data: bytes) -> None:
        try:
            if self.phase is Phase.STARTUP:
                self._startup(data)
            elif self.phase is Phase.LOGIN:
                self._login(self.client.feed(data))
            elif self.phase is not Phase.CLOSED:
                self.path.from_client(self.client.feed(data))
        except ProtocolError as exc:
            self.fatal(exc.sqlstate, f"invalid client message: {exc}", "malformed client input")

    def server_data(self, data: bytes) -> None:
        if self.phase is Phase.CLOSED:
            return
        try:
            self.path.from_server(self.server.feed(data))
        except ProtocolError as exc:
            self.fatal("08P01", "lost synchronization with upstream server", f"malformed upstream data: {exc}")

    def client_eof(self) -> None:
        if self.phase is not Phase.CLOSED:
            self.close("client closed" if self.client.at_boundary else "client vanished mid-message")

    def server_eof(self) -> None:
        """The upstream went away. Tell the client, unless it is mid-message (then just close)."""
        if self.phase is Phase.CLOSED:
            return
        if self.server_said_fatal:      # the client has its reason already; don't add a second
            self.close("upstream closed after FATAL")
        elif self.server.at_boundary:
            self.fatal("08006", f"connection to upstream {self.upstream} lost", "upstream lost")
        else:
            self.close("upstream lost mid-message")

    def upstream_unreachable(self, detail: str) -> None:
        self.fatal("08001", f"wireproxy could not connect to upstream {self.upstream}",
                   f"upstream unreachable: {detail}", detail=detail)

    def refuse(self, sqlstate: str, message: str, reason: str) -> None:
        """Turn a client away before or after startup (limits, a broken session log, shutdown)."""
        self.fatal(sqlstate, message, reason)

    def tls_started(self) -> None:
        """The pump finished the TLS handshake: what comes now comes encrypted."""
        self.start_tls, self.tls_active = False, True

    def upstream_logged_in(self, data: bytes) -> None:
        """The pump logged in upstream with the held credentials; `data` is what the server
        sent from its AuthenticationOk on."""
        self.upstream_startup = None
        self.server_data(data)
        early, self._early = self._early, []
        if early and self.phase is not Phase.CLOSED:
            self.path.from_client(early)

    def cancel_sent(self) -> None:
        """The pump delivered the cancel a CancelQuery asked for: the client's next statement
        may go on (before, the cancel could have landed on it)."""
        self.release()

    def approval_pending(self, approval_id: str) -> None:
        """The held statement is now a request `approval_id`: tell the client how it is approved
        (the pump repeats this now and then, so psql and drivers show life)."""
        self.to_client.append(NoticeResponse.make(
            "01000", f"waiting for approval {approval_id}: wireproxy approvals approve {approval_id}").encode())

    def approval_decided(self, approved: bool, client_text: str = "", sqlstate: str = "42501") -> None:
        """Run the held statement, or fail it with `client_text` as the server would fail it."""
        sql, decision = self.awaiting
        self.awaiting = None
        if approved:
            self.enforcer.allow_once(sql, decision)
        else:
            self.enforcer.block_with(sql, decision, client_text, sqlstate)
        self.release()

    # ----------------------------------------------------------------- used by the paths --

    def fatal(self, sqlstate: str, message: str, reason: str, **fields: str) -> None:
        extra = {"D": fields["detail"]} if "detail" in fields else {}
        self.to_client.append(ErrorResponse.make(sqlstate, message, "FATAL", **extra).encode())
        self.close(reason)

    def terminated(self) -> None:
        self.close("client terminated")

    def close(self, reason: str) -> None:
        """The session ends: the pumps flush the outboxes, then close both sides."""
        if self.phase is not Phase.CLOSED:
            self.close_reason = reason
            self.phase = Phase.CLOSED
            self.actions.append(EndSession(reason))

    def became_ready(self) -> None:
        """The first ReadyForQuery: authentication is over."""
        self.phase = Phase.READY
        self.events.append(Ready(self.backend_key[0] if self.backend_key else None))
        if self.masks is not None:
            sql = self.masks.catalog_sql()
            if sql:
                self.ask(Lookup(sql, self.masks.learn_columns))

    def ask(self, lookup: Lookup) -> None:
        """Send our own query in band; the client's input waits until it is answered."""
        self.holds.hold()
        self.lookups += 1
        self.to_server.append(self.conversation.ask(lookup))
        self.reframe()

    def answered(self, lookup: Lookup) -> None:
        self.lookups -= 1
        self.reframe()
        lookup.answered(None if lookup.failed else lookup.rows)
        self.release()

    def cancel_query(self, why: str) -> None:
        """Cancel the running query upstream; hold the client's next statement until the cancel
        is out, so a cancel that arrives late cannot hit that statement instead."""
        if not any(isinstance(a, CancelQuery) for a in self.actions):
            self.actions.append(CancelQuery(why))
            self.holds.hold()

    def fail_batch(self) -> None:
        """Make the server fail the current extended-protocol batch: a Parse it cannot parse, sent
        ahead of the batch's held rest; it skips to Sync and rolls the batch back."""
        entry = self.conversation.internal(Wait.PARSE)
        if entry is not None:
            entry.quiet = True
            self.to_server.append(Parse("wireproxy_cut", unparseable("volume-limit")).encode())

    def hold_for_approval(self, sql: str, decision) -> bool:
        """An approve decision: hold the statement for a human (False: no broker, block it)."""
        if not self.approvals:
            return False
        self.awaiting = (sql, decision)
        self.holds.hold()
        self.actions.append(AwaitApproval(decision, sql))
        return True

    def release(self) -> None:
        held = self.holds.release()
        if held:
            self.path.from_client(held)

    def reframe(self) -> None:
        """Which server messages may pass as raw bytes, from what the collaborators need now."""
        masks, limits = self.masks is not None, self.limits.active > 0
        rows = masks or limits or self.lookups > 0 or (self.recorder is not None and self.recorder.capturing)
        copy = masks or limits
        self.server.passthrough = (_FRAMED if rows and copy else _RAW_COPY if rows
                                   else _RAW_ROWS if copy else _RAW_ROWS_AND_COPY)

    # ---------------------------------------------------------------------------- startup --

    def _startup(self, data: bytes) -> None:
        items = self.client.feed(data)
        while items:
            (_, packet), = items
            message = decode_startup(packet[4:])
            if isinstance(message, SSLRequest) and self.tls and not self.tls_active:
                if self.client.buffered:      # bytes sent in clear would pass as if encrypted
                    self.fatal("08P01", "received unencrypted data after SSL request", "malformed client input")
                    return
                self.to_client.append(b"S")
                self.start_tls = True
                return
            if isinstance(message, (SSLRequest, GSSENCRequest)):
                self.to_client.append(b"N")   # sslmode=prefer goes on in plain text
                items = self.client.drain()
            elif isinstance(message, CancelRequest):
                self.cancel_request = message
                self.close("cancel request")
                return
            elif self.require_tls and not self.tls_active:
                self.fatal("28000", "wireproxy requires TLS on this listener: connect with sslmode=require",
                           "plaintext refused")
                return
            else:
                self._started(message, packet)
                rest = self.client.drain()
                if rest:
                    if self.phase is Phase.LOGIN:
                        self._login(rest)
                    else:
                        self.path.from_client(rest)
                return

    def _started(self, message: StartupMessage, packet: bytes) -> None:
        self.startup = message
        self.client.startup = False
        self.login = self.access.login(message.user) if self.access is not None else None
        if self.login is None:
            self._begin(Identity(message.user))
            if self.phase is not Phase.CLOSED:
                self.to_server.append(packet)
            return
        self.phase = Phase.LOGIN
        self.to_client.append(self.login.begin())

    def _login(self, items) -> None:
        login = self.login
        for index, (code, message) in enumerate(items):
            reply = login.receive(code, message)
            if reply:
                self.to_client.append(reply)
            if login.failure is not None:
                self.login_failure = login.failure
                self.fatal("28P01", login.failure_message, "authentication failed")
                return
            if login.identity is not None:
                self._early = items[index + 1:]
                self._logged_in(login.identity)
                return

    def _logged_in(self, identity: Identity) -> None:
        try:
            self.upstream_role = self.access.upstream_role(identity)
        except NoUpstreamRole:
            self.identity = identity
            self.fatal("28000", f'wireproxy has no upstream role for user "{identity.name}"', "no upstream role")
            return
        parameters = {**self.startup.parameters, "user": self.upstream_role}
        self.upstream_startup = StartupMessage(parameters, self.startup.version).encode()
        self._begin(identity)

    def _begin(self, identity: Identity) -> None:
        """Authentication is ours or the server's now: set up what judges this identity."""
        message = self.startup
        self.identity = identity
        self.phase = Phase.AUTH
        self.events.append(Started(identity.name, message.database,
                                   message.parameters.get("application_name", ""),
                                   identity.method if identity.method != "claimed" else None))
        if wants_replication(message.parameters) and not self.allow_replication:
            self.fatal("42501", "wireproxy does not allow replication connections on this listener",
                       "replication refused")
            return
        judge_factory, mask_factory = self._factories
        recording, log_gate, max_result_bytes = self._recording
        judge = judge_factory(identity) if judge_factory is not None else None
        masker = mask_factory(identity) if mask_factory is not None else None
        strict = masker.strict_columns() if masker is not None else None
        if judge is None and masker is None and not recording and log_gate is None:
            return                                    # the plain path: nothing to look at
        self.enforcer = Enforcer(judge, emit=self.events.append, gate=log_gate,
                                 strict=StrictColumns(strict) if strict else None, tally=self.tally)
        if masker is not None:
            self.masks = RowMasks(masker)
        if recording:
            self.recorder = Recorder(self.events.append, clock=self.clock,
                                     mask_param=self.masks.mask_text if self.masks else None,
                                     max_result_bytes=max_result_bytes)
        self.conversation.full = True
        self.path = Inspecting(self)
        self.reframe()
        self._judge_settings(message)

    def _judge_settings(self, message: StartupMessage) -> None:
        """Settings in the startup packet are SETs before the first statement: judged as such."""
        try:
            settings = settings_of(message.parameters)
        except BadOptions as exc:
            self.fatal("22023", f"invalid startup options: {exc}", "malformed client input")
            return
        for name, value in settings:
            sql = as_set(name, value)
            decision = self.enforcer.query(sql)
            if decision.action is not Action.ALLOW:
                self.events.append(Decided(decision.action.name.lower(), decision.rule_id,
                                           list(decision.matched), sql, "startup"))
            if not decision.allowed:                  # approve cannot be held before login: block
                self.fatal("42501", decision.client_message(), f"startup setting {name} blocked")
                return


class Inspecting:
    """The path of a session with something to judge, mask or record: every message is read
    and handed, with the entry it belongs to, to the collaborators."""

    def __init__(self, relay: PgRelay):
        self.from_client = client_side.ClientSide(relay).feed
        self.from_server = server_side.ServerSide(relay).feed
