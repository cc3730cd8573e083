"""A small PostgreSQL client under trio, on the project's own codec (protocols/postgres).

What wireproxy's own state needs (the approvals store), nothing more:

    target = PgTarget.parse("postgresql://wireproxy@db.internal:5432/wireproxy")
    client = await PgClient.connect(target, password=os.environ.get(...))
    result = await client.execute("select doc from t where id = $1", approval_id)
    await client.execute("listen wireproxy_approvals")
    note = await client.notification()        # blocks on the socket: no polling
    await client.aclose()

Authentication: trust, cleartext, md5 and SCRAM-SHA-256 (protocols/postgres/scram.py).
`execute` with parameters uses the extended protocol (values travel apart from the SQL text,
so nothing is ever quoted into it); without them, a simple Query, which may hold several
statements. Values come back as text (str) or None. One operation at a time per connection: a
connection that waits for notifications is a connection of its own. Any failure of the
connection, or an operation cancelled midway, leaves the client closed (`closed` is true) and
raises PgConnectionLost; reconnecting is the caller's choice. TLS with `sslmode=require` or
`verify-full` (and `sslrootcert=`) in the DSN, as libpq means them.
"""

from __future__ import annotations

from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

import trio

from protocols.postgres import (Authentication, BackendKeyData, Bind, CommandComplete, CopyFail,
                                CopyInResponse, DataRow, Describe, ErrorResponse, Execute, Framer,
                                NotificationResponse, ParameterStatus, Parse, ProtocolError, Query,
                                ReadyForQuery, RowDescription, StartupMessage, Sync,
                                decode_backend)
from protocols.postgres.login import LoginError, PasswordLogin

from .pg.upstream import start_tls
from .streams import BUFSIZE, connect


class PgClientError(Exception):
    """Base of the client's errors."""


class PgConnectionLost(PgClientError):
    """The connection failed or was closed; the client is unusable from now on."""


class PgServerError(PgClientError):
    def __init__(self, error: ErrorResponse):
        self.sqlstate = error.sqlstate
        self.fields = dict(error.fields)
        super().__init__(f"{error.severity or 'ERROR'} {error.sqlstate}: {error.message}")


@dataclass(frozen=True)
class PgTarget:
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    database: str | None = None
    application_name: str = "wireproxy"
    sslmode: str = "disable"            # disable | require | verify-full (libpq's meaning)
    sslrootcert: str | None = None      # verify-full: the CA file (default: the system's)

    @classmethod
    def parse(cls, dsn: str) -> PgTarget:
        """A URL (postgresql://user@host:port/db) or key=value pairs (host= port= user= dbname=).
        A password in it is refused: it belongs in the environment, not in a config file."""
        dsn = dsn.strip()
        if dsn.startswith(("postgresql://", "postgres://")):
            parts = urlsplit(dsn)
            if parts.password is not None:
                raise ValueError("the DSN holds a password: give it through the environment instead")
            values = {"host": parts.hostname, "port": parts.port, "user": unquote(parts.username or ""),
                      "dbname": unquote(parts.path.lstrip("/"))}
            values.update(parse_qsl(parts.query))
        else:
            values = {}
            for item in dsn.split():
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"{item!r} is not key=value")
                values[key] = value
        unknown = set(values) - {"host", "port", "user", "dbname", "application_name", "sslmode", "sslrootcert"}
        if "password" in unknown:
            raise ValueError("the DSN holds a password: give it through the environment instead")
        if unknown:
            raise ValueError(f"unsupported DSN parameter {sorted(unknown)[0]!r}")
        port = values.get("port") or 5432
        if not str(port).isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"port {port!r} is not a port number")
        sslmode = values.get("sslmode") or "disable"
        if sslmode not in ("disable", "require", "verify-full"):
            raise ValueError(f"sslmode {sslmode!r} is not disable, require or verify-full")
        if values.get("sslrootcert") and sslmode != "verify-full":
            raise ValueError("sslrootcert is used with sslmode=verify-full")
        return cls(host=values.get("host") or "127.0.0.1", port=int(port),
                   user=values.get("user") or "postgres", database=values.get("dbname") or None,
                   application_name=values.get("application_name") or "wireproxy",
                   sslmode=sslmode, sslrootcert=values.get("sslrootcert") or None)

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database or self.user}"


@dataclass
class Result:
    columns: tuple[str, ...] = ()
    rows: list[tuple[str | None, ...]] = field(default_factory=list)
    tag: str = ""


@dataclass(frozen=True)
class Notification:
    process_id: int
    channel: str
    payload: str


class PgClient:
    def __init__(self, stream: trio.abc.Stream, target: PgTarget):
        self._stream = stream
        self.target = target
        self._framer = Framer()
        self._inbox: deque = deque()
        self._notifications: deque[Notification] = deque()
        self._busy = False
        self.closed = False
        self._stream_closed = False
        self.parameters: dict[str, str] = {}
        self.process_id: int | None = None

    @classmethod
    async def connect(cls, target: PgTarget, password: str | None = None, *,
                      timeout: float = 10.0) -> PgClient:
        try:
            stream = await connect(target.host, target.port, timeout)
            stream = await start_tls(stream, target.sslmode, target.sslrootcert, target.host, timeout=timeout)
        except OSError as exc:
            raise PgConnectionLost(f"cannot connect to {target.host}:{target.port}: {exc.strerror or exc}") from None
        client = cls(stream, target)
        try:
            with trio.fail_after(timeout):
                await client._start(password)
        except trio.TooSlowError:
            await client.aclose()
            raise PgConnectionLost(f"{target}: no answer to the startup within {timeout:g}s") from None
        except BaseException:
            await client.aclose()
            raise
        return client

    async def aclose(self) -> None:
        self.closed = True
        if not self._stream_closed:
            self._stream_closed = True
            await trio.aclose_forcefully(self._stream)

    # -- operations ------------------------------------------------------------------------------

    async def execute(self, sql: str, *params: object) -> Result:
        """Run `sql` (with $1, $2... bound to `params`) and return its last result."""
        if params:
            messages = (Parse("", sql).encode()
                        + Bind("", "", (), tuple(_text(p) for p in params), ()).encode()
                        + Describe("P", "").encode() + Execute("").encode() + Sync().encode())
        else:
            messages = Query(sql).encode()
        async with self._operation():
            await self._send(messages)
            return await self._collect()

    async def notification(self) -> Notification:
        """The next NotificationResponse, waiting on the socket for it (no polling)."""
        async with self._operation():
            while not self._notifications:
                message = await self._receive()
                if not isinstance(message, NotificationResponse):
                    raise PgConnectionLost(f"unexpected {type(message).__name__} while idle")
                self._note(message)
            return self._notifications.popleft()

    # -- internals -------------------------------------------------------------------------------

    @asynccontextmanager
    async def _operation(self):
        if self.closed:
            raise PgConnectionLost(f"{self.target}: the connection is closed")
        if self._busy:
            raise PgClientError("one operation at a time on a PgClient")
        self._busy = True
        try:
            yield
        except PgServerError:
            if self.closed:             # FATAL: the server ends the session
                await self._close_shielded()
            raise
        except BaseException:
            # Cancelled or failed midway: the protocol state is unknown, so give up the
            # connection rather than read the rest of an answer meant for someone else.
            await self._close_shielded()
            raise
        finally:
            self._busy = False

    async def _close_shielded(self) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()

    async def _start(self, password: str | None) -> None:
        params = {"user": self.target.user, "application_name": self.target.application_name,
                  "client_encoding": "UTF8"}
        if self.target.database:
            params["database"] = self.target.database
        await self._send(StartupMessage(params).encode())
        login = PasswordLogin(self.target.user, password)
        while True:
            message = await self._receive()
            if type(message) is ErrorResponse:
                raise PgServerError(message)
            if isinstance(message, Authentication):
                try:
                    reply = login.answer(message)
                except LoginError as exc:
                    raise PgClientError(f"{self.target}: {exc}") from None
                if reply:
                    await self._send(reply)
            elif isinstance(message, ReadyForQuery):
                return
            elif isinstance(message, ParameterStatus):
                self.parameters[message.name] = message.value
            elif isinstance(message, BackendKeyData):
                self.process_id = message.process_id

    async def _collect(self) -> Result:
        result, current, error = Result(), Result(), None
        while True:
            message = await self._receive()
            if isinstance(message, RowDescription):
                current = Result(columns=tuple(f.name for f in message.fields))
            elif isinstance(message, DataRow):
                current.rows.append(tuple(None if v is None else v.decode("utf-8", "replace")
                                          for v in message.values))
            elif isinstance(message, CommandComplete):
                current.tag = message.tag
                result, current = current, Result()
            elif isinstance(message, NotificationResponse):
                self._note(message)
            elif isinstance(message, CopyInResponse):
                await self._send(CopyFail("COPY is not supported by this client").encode())
            elif type(message) is ErrorResponse:
                error = error or message
            elif isinstance(message, ReadyForQuery):
                if error is not None:
                    raise PgServerError(error)
                return result
            # ParseComplete, BindComplete, NoData, notices, CopyData/CopyDone of a COPY TO: nothing to keep

    def _note(self, message: NotificationResponse) -> None:
        self._notifications.append(Notification(message.process_id, message.channel, message.payload))

    async def _send(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise PgConnectionLost(f"{self.target}: connection lost ({exc.__class__.__name__})") from None

    async def _receive(self):
        while not self._inbox:
            try:
                data = await self._stream.receive_some(BUFSIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise PgConnectionLost(f"{self.target}: connection lost ({exc.__class__.__name__})") from None
            if not data:
                raise PgConnectionLost(f"{self.target}: the server closed the connection")
            try:
                for code, raw in self._framer.feed(data):
                    self._inbox.append(decode_backend(code, raw[5:]))
            except ProtocolError as exc:
                raise PgConnectionLost(f"{self.target}: protocol error from the server: {exc}") from None
        message = self._inbox.popleft()
        if type(message) is ErrorResponse and message.severity in ("FATAL", "PANIC"):
            self.closed = True
            raise PgServerError(message)
        return message


def _text(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


__all__ = ["Notification", "PgClient", "PgClientError", "PgConnectionLost",
           "PgServerError", "PgTarget", "Result"]
