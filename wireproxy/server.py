"""The running proxy: listeners, supervision, signals, graceful shutdown.

One task per listener accepts connections into a shared session nursery. Shutdown stops the
listeners first, then gives sessions `shutdown_grace` seconds to end on their own before
cancelling them; asking twice cancels at once.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
import signal
import traceback
from collections import defaultdict

import trio

from .admin import AdminApi, ensure_token, serve_admin
from .approvals import Broker, MemoryStore
from .config import Config, ConfigError, HttpListener, PostgresListener, TcpListener
from .config.locations import key_file_for, mask_key_file_for, reading_command
from .telemetry import metrics
from .telemetry.logs import log
from .auth.limiter import LoginLimiter
from .pg.access import Access
from .pg.upstream import client_context
from .pg.cancel import CancelRegistry
from .pg.session import PgSession
from .config.rulebook import RuleBooks
from .tcp import handle_tcp
from .upstreams import UpstreamHealth


def listener_tls(listener: PostgresListener):
    """The listener's TLS towards clients (None: it answers SSLRequest with 'N')."""
    from .tls import ServerTLS, TLSConfigError
    if listener.tls_cert is None:
        return None
    try:
        return ServerTLS(listener.tls_cert, listener.tls_key)
    except TLSConfigError as exc:
        raise ConfigError(listener.tls_cert, None, str(exc)) from None


def token_verifier(config: Config):
    """The JWT verifier of `[jwt]`, or None; an unusable key file stops serve with one line."""
    if config.directory.jwt is None:
        return None
    from .auth.tokens import TokenConfigError, TokenVerifier
    try:
        return TokenVerifier(config.directory.jwt)
    except TokenConfigError as exc:
        raise ConfigError(config.path or "wireproxy.toml", None, str(exc)) from None


class Server:
    def __init__(self, config: Config, *, rules_poll_interval: float = 1.0, approvals=None,
                 sockets: dict[str, list] | None = None):
        self.config = config
        # A worker's listening sockets, made by the supervisor (wireproxy.workers): by listener
        # key, as in `bound`. The supervisor then tells the ports and readiness, not this.
        self.inherited = sockets
        self.session_log = open_session_log(config.log)
        self.cancels = CancelRegistry()
        self.rulebooks = RuleBooks(mask_hash_key(config.log))
        for listener in [*config.postgres, *config.http]:   # a broken rule file stops serve before it listens
            self.rulebooks.for_files(listener.rules)
        self.rules_poll_interval = rules_poll_interval
        self.broker = build_broker(config)
        self.upstreams = UpstreamHealth([("postgres", listener.upstream) for listener in config.postgres]
                                        + [("tcp", listener.upstream) for listener in config.tcp])
        self.admin_token = admin_token(config) if config.admin.listen is not None else None
        # Holds need someone who can decide: the broker when the admin API is on here or the store
        # is shared with instances that may have one (or the broker given); else none, and an
        # approve decision blocks (Postgres) or answers 403 (HTTP): fail closed.
        decidable = self.admin_token is not None or config.approvals.store == "postgres"
        self.approvals = approvals if approvals is not None else (self.broker if decidable else None)
        self.http_proxies = [self._http_proxy(listener) for listener in config.http]
        self.tokens = token_verifier(config)
        self.limiter = LoginLimiter()                 # one per process: every listener's failures count
        self.pg_tls = {id(listener): listener_tls(listener) for listener in config.postgres}
        metrics.POLICY_CACHE_HITS.collect_from(lambda: self._cache_stat("hits"))
        metrics.POLICY_CACHE_MISSES.collect_from(lambda: self._cache_stat("misses"))
        self.active: dict[str, int] = defaultdict(int)
        self._stop = trio.Event()
        self._sessions_scope: trio.CancelScope | None = None
        self.bound: dict[str, list[tuple[str, int]]] = {}
        self.render_metrics = metrics.REGISTRY.render      # a worker's sums its siblings' in

    def reload(self, why: str) -> None:
        """Rule files, and the certificates of listeners that serve TLS."""
        self.rulebooks.reload_all(why)
        for proxy in self.http_proxies:
            if proxy.tls is not None:
                proxy.tls.reload()
        for tls in self.pg_tls.values():
            if tls is not None:
                tls.reload()
        client_context.cache_clear()                  # upstream CA files are read again
        if self.tokens is not None:
            self.tokens.reload()

    def request_shutdown(self) -> None:
        if self._stop.is_set():
            if self._sessions_scope is not None:
                log("shutdown.now", level="warning")
                self._sessions_scope.cancel()
            return
        log("shutdown.requested", grace_s=self.config.shutdown_grace)
        self._stop.set()
        for proxy in self.http_proxies:
            proxy.close_idle()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        # Services outlive the sessions: held statements can still be approved while they drain.
        announce_recording(self.config.log)
        async with trio.open_nursery() as services:
            if self.session_log is not None:
                await services.start(self.session_log.run)
            await services.start(self.broker.run)
            services.start_soon(self.upstreams.probe)         # warns, never holds serve back
            if self.admin_token is not None:
                await self._serve_admin(services)
            await self._serve(task_status)
            services.cancel_scope.cancel()                    # the writer seals and flushes on cancel

    async def _serve_admin(self, services: trio.Nursery) -> None:
        address = self.config.admin.listen
        sockets = await self._open_listeners(f"admin:{address}", address)
        bound = [s.socket.getsockname()[:2] for s in sockets]
        self.bound[f"admin:{address}"] = bound
        if self.inherited is None:
            announce_admin(bound, self.config.token_file)
        await services.start(serve_admin, sockets, AdminApi(self.broker, self.admin_token,
                                                            upstreams=self.upstreams.current,
                                                            render_metrics=self.render_metrics))

    def _cache_stat(self, key: str) -> int:
        return sum(book.policy.cache_stats()[key] for book in self.rulebooks.books.values())

    async def _serve(self, task_status) -> None:
        async with trio.open_nursery() as sessions:
            self._sessions_scope = sessions.cancel_scope
            async with trio.open_nursery() as listeners:
                for listener in self.config.postgres:
                    await self._listen(listeners, sessions, "postgres", listener, self._postgres_handler(listener))
                for listener in self.config.tcp:
                    await self._listen(listeners, sessions, "tcp", listener, self._tcp_handler(listener))
                for listener, proxy in zip(self.config.http, self.http_proxies):
                    await self._listen(listeners, sessions, "http", listener, self._http_handler(listener, proxy))
                listeners.start_soon(self._watch_rules)
                log("ready" if self.inherited is None else "worker.ready",
                    listeners=sum(len(v) for v in self.bound.values()))
                task_status.started(self.bound)
                await self._stop.wait()
                listeners.cancel_scope.cancel()
            open_sessions = sum(self.active.values())
            log("shutdown.draining", sessions=open_sessions, grace_s=self.config.shutdown_grace)
            sessions.cancel_scope.deadline = trio.current_time() + self.config.shutdown_grace
        log("shutdown.done")

    async def _watch_rules(self) -> None:
        """A changed rule file is reloaded within a poll interval; SIGHUP reloads at once."""
        while True:
            await trio.sleep(self.rules_poll_interval)
            self.rulebooks.reload_changed()

    def judge_factory_for(self, listener: PostgresListener):
        book = self.rulebooks.for_files(listener.rules)
        if book is None:
            log("rules.none", level="warning", listener=str(listener.listen),
                note="no rule files: statements on this listener are not judged")
            return None
        return book.session_judge

    async def _open_listeners(self, key: str, address) -> list[trio.SocketListener]:
        if self.inherited is not None:
            if key not in self.inherited:
                raise ListenError(f"cannot listen on {address}: no socket was handed over for it")
            return [trio.SocketListener(trio.socket.from_stdlib_socket(sock)) for sock in self.inherited[key]]
        try:
            return await trio.open_tcp_listeners(address.port, host=address.host)
        except OSError as exc:
            raise ListenError(f"cannot listen on {address}: {exc.strerror or exc}") from None

    async def _listen(self, nursery, sessions, kind: str, listener, handler) -> None:
        address = listener.listen
        sockets = await self._open_listeners(f"{kind}:{address}", address)
        bound = [s.socket.getsockname()[:2] for s in sockets]
        self.bound.setdefault(f"{kind}:{address}", []).extend(bound)
        if self.inherited is None:
            announce_listener(kind, listener, bound)
        await nursery.start(functools.partial(trio.serve_listeners, handler, sockets, handler_nursery=sessions))

    def _postgres_handler(self, listener: PostgresListener):
        key = f"postgres:{listener.listen}"
        judge_factory = self.judge_factory_for(listener)
        book = self.rulebooks.for_files(listener.rules)
        mask_factory = book.session_masker if book is not None else None
        access = (Access(listener, self.config.directory, tokens=self.tokens, limiter=self.limiter)
                  if self.config.directory.terminates else None)
        tls = self.pg_tls[id(listener)]
        if access is not None and self.tokens is not None and "jwt" in listener.login_methods and not listener.require_tls:
            log("auth.cleartext_tokens", level="warning", listener=str(listener.listen),
                note="JWTs arrive as cleartext passwords: without require_tls = true (and tls_cert) a "
                     "token may cross the network readable and be replayed until it expires")
        opened, open_now = metrics.SESSIONS.labels(protocol="postgres"), metrics.SESSIONS_OPEN.labels(protocol="postgres")
        from_client = metrics.BYTES.labels(protocol="postgres", direction="from_client")
        from_server = metrics.BYTES.labels(protocol="postgres", direction="from_server")

        async def handler(stream: trio.SocketStream) -> None:
            self.active[key] += 1
            opened.inc()
            open_now.inc()
            session = None
            try:
                session = PgSession(stream, listener, self.cancels, judge_factory=judge_factory,
                                    mask_factory=mask_factory, session_log=self.session_log,
                                    broker=self.approvals, access=access, tls=tls)
                if self.active[key] > listener.max_connections:
                    await session.refuse("53300", "sorry, too many clients already (wireproxy limit)",
                                         "too many connections")
                    return
                await session.run()
            except Exception as exc:      # one session's bug must not take the server down
                _crashed(exc)
            finally:
                self.active[key] -= 1
                open_now.dec()
                if session is not None:     # at session end; live counts would come from the pumps
                    from_client.inc(session.bytes_from_client)
                    from_server.inc(session.bytes_from_server)
        return handler

    def _http_proxy(self, listener: HttpListener):
        from .http.proxy import HttpProxy
        book = self.rulebooks.for_files(listener.rules)
        if book is None:
            log("rules.none", level="warning", listener=str(listener.listen),
                note="no rule files: HTTP requests on this listener are not judged or masked")
        return HttpProxy(listener, book, self.session_log, self.approvals)

    def _http_handler(self, listener: HttpListener, proxy):
        key = f"http:{listener.listen}"

        async def handler(stream: trio.SocketStream) -> None:
            self.active[key] += 1
            try:
                await proxy.handle(stream)
            except Exception as exc:      # one connection's bug must not take the server down
                _crashed(exc)
            finally:
                self.active[key] -= 1
        return handler

    def _tcp_handler(self, listener: TcpListener):
        key = f"tcp:{listener.listen}"
        opened, open_now = metrics.SESSIONS.labels(protocol="tcp"), metrics.SESSIONS_OPEN.labels(protocol="tcp")

        async def handler(stream: trio.SocketStream) -> None:
            self.active[key] += 1
            opened.inc()
            open_now.inc()
            try:
                if self.active[key] > listener.max_connections:
                    log("tcp.refused", level="warning", listener=str(listener.listen), reason="too many connections")
                    await trio.aclose_forcefully(stream)
                    return
                await handle_tcp(stream, listener)
            except Exception as exc:
                _crashed(exc)
            finally:
                self.active[key] -= 1
                open_now.dec()
        return handler


def announce_listener(kind: str, listener, bound) -> None:
    for host, port in bound:
        log("listening", kind=kind, address=f"{host}:{port}", upstream=str(listener.upstream or "forward proxy"))


def announce_admin(bound, token_file) -> None:
    for host, port in bound:
        log("listening", kind="admin", address=f"{host}:{port}", token_file=str(token_file))
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            log("admin.not_loopback", level="warning", address=f"{host}:{port}",
                note="the admin API speaks plain HTTP: its bearer token crosses the network in clear; "
                     "listen on loopback, or put a TLS proxy in front")


def build_broker(config: Config) -> Broker:
    """The approval broker the config asks for: its store, webhook and limits."""
    settings = config.approvals
    store = MemoryStore()
    if settings.store == "postgres":
        from .approvals.pgstore import PostgresStore
        from .pgclient import PgTarget
        password = None
        if settings.password_env:
            password = os.environ.get(settings.password_env)
            if password is None:
                raise ConfigError(config.path or "wireproxy.toml", None, f"approvals.password_env: the "
                                  f"environment variable {settings.password_env} is not set")
        store = PostgresStore(PgTarget.parse(settings.dsn), password, table=settings.table)
    notifier = None
    if settings.webhook:
        from .approvals.webhook import WebhookNotifier
        notifier = WebhookNotifier(settings.webhook, timeout=settings.webhook_timeout,
                                   retries=settings.webhook_retries)
    return Broker(store, default_timeout=settings.timeout, max_window=settings.max_window,
                  notice_interval=settings.notice_interval, notifier=notifier,
                  admin_url=config.admin.public_url, groups_of=config.directory.groups_of)


def admin_token(config: Config) -> str:
    token, created = ensure_token(config.token_file)
    if created:
        log("admin.token_created", level="warning", token_file=str(config.token_file),
            note="the admin API's bearer token (0600); `wireproxy approvals` reads it through --config")
    return token


def mask_hash_key(settings) -> bytes:
    """Key of the masking hash style: a secret file beside the log key (created 0600), so a
    masked value hashes the same across restarts; without one, a key for this process only."""
    path = mask_key_file_for(settings)
    if path is None:
        return b""       # RuleBook draws a key for this process if a rule uses the hash style
    if not path.exists():
        # Written whole under a temporary name, then linked into place: two proxies starting
        # together agree on one key, and nobody ever reads a half-written one.
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
    key = path.read_bytes()
    if len(key) < 32:
        raise ConfigError(path, None, "the masking hash key is shorter than 32 bytes")
    return key


def open_session_log(settings):
    """The session log the config asks for (None when no log dir), keys created on first run."""
    if settings.dir is None:
        return None
    from .sessionlog import SessionLog, ensure_keys, first_run_notice
    key_file = key_file_for(settings)
    public, created = ensure_keys(key_file)
    if created:
        log("keys.created", level="warning", public_key=str(public), private_key=str(key_file),
            note=first_run_notice(key_file))
    retention_age = settings.retention_days * 86400 if settings.retention_days else None
    return SessionLog(settings.dir, key_file, fail_open=settings.fail_open,
                      max_result_bytes=settings.max_result_bytes,
                      retention_max_age=retention_age, retention_max_bytes=settings.retention_max_bytes)


def announce_recording(settings) -> None:
    """Where sessions are recorded and how to read them back, by the one rule (config.locations)."""
    if settings.dir is None:
        log("recording.off", note="no --log-dir and no [log] dir: sessions are not recorded")
        return
    from .sessionlog import public_key_path
    key_file = key_file_for(settings)
    log("recording", log_dir=str(settings.dir.resolve()), public_key=str(public_key_path(key_file)),
        private_key=str(key_file), read_with=reading_command(settings))


def _crashed(exc: BaseException) -> None:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    log("session.crashed", level="error", error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc))[-4000:])


class ListenError(Exception):
    pass


async def serve(config: Config, *, server: Server | None = None, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run until SIGTERM/SIGINT (twice: at once); SIGHUP reloads the rules and certificates."""
    server = server or Server(config)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            async def watch_signals():
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        server.reload("SIGHUP")
                    else:
                        server.request_shutdown()

            nursery.start_soon(watch_signals)
            await server.run(task_status=task_status)
            nursery.cancel_scope.cancel()
