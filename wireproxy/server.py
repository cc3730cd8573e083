"""The running proxy: listeners, supervision, signals, graceful shutdown.

One task per listener accepts connections into a shared session nursery. Shutdown stops the
listeners first, then gives sessions `shutdown_grace` seconds to end on their own before
cancelling them; asking twice cancels at once.
"""

from __future__ import annotations

import functools
import signal
from collections import defaultdict

import trio

from .config import Config, PostgresListener, TcpListener
from .logs import log
from .pg.cancel import CancelRegistry
from .pg.session import PgSession
from .tcp import handle_tcp


class Server:
    def __init__(self, config: Config, *, judge_factory_for=None):
        self.config = config
        self.cancels = CancelRegistry()
        self.judge_factory_for = judge_factory_for or (lambda listener: None)
        self.active: dict[str, int] = defaultdict(int)
        self._stop = trio.Event()
        self._sessions_scope: trio.CancelScope | None = None
        self.bound: dict[str, list[tuple[str, int]]] = {}

    def request_shutdown(self) -> None:
        if self._stop.is_set():
            if self._sessions_scope is not None:
                log("shutdown.now", level="warning")
                self._sessions_scope.cancel()
            return
        log("shutdown.requested", grace_s=self.config.shutdown_grace)
        self._stop.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as sessions:
            self._sessions_scope = sessions.cancel_scope
            async with trio.open_nursery() as listeners:
                for listener in self.config.postgres:
                    await self._listen(listeners, sessions, "postgres", listener, self._postgres_handler(listener))
                for listener in self.config.tcp:
                    await self._listen(listeners, sessions, "tcp", listener, self._tcp_handler(listener))
                log("ready", listeners=sum(len(v) for v in self.bound.values()))
                task_status.started(self.bound)
                await self._stop.wait()
                listeners.cancel_scope.cancel()
            open_sessions = sum(self.active.values())
            log("shutdown.draining", sessions=open_sessions, grace_s=self.config.shutdown_grace)
            sessions.cancel_scope.deadline = trio.current_time() + self.config.shutdown_grace
        log("shutdown.done")

    async def _listen(self, nursery, sessions, kind: str, listener, handler) -> None:
        address = listener.listen
        try:
            sockets = await trio.open_tcp_listeners(address.port, host=address.host)
        except OSError as exc:
            raise ListenError(f"cannot listen on {address}: {exc.strerror or exc}") from None
        bound = [s.socket.getsockname()[:2] for s in sockets]
        self.bound.setdefault(f"{kind}:{address}", []).extend(bound)
        for host, port in bound:
            log("listening", kind=kind, address=f"{host}:{port}", upstream=str(listener.upstream))
        await nursery.start(functools.partial(trio.serve_listeners, handler, sockets, handler_nursery=sessions))

    def _postgres_handler(self, listener: PostgresListener):
        key = f"postgres:{listener.listen}"
        judge_factory = self.judge_factory_for(listener)

        async def handler(stream: trio.SocketStream) -> None:
            self.active[key] += 1
            try:
                session = PgSession(stream, listener, self.cancels, judge_factory)
                if self.active[key] > listener.max_connections:
                    session.relay.refuse("53300", "sorry, too many clients already (wireproxy limit)",
                                         "too many connections")
                    await session._flush_client()
                    await session._close()
                    return
                await session.run()
            except Exception as exc:      # one session's bug must not take the server down
                log("session.crashed", level="error", error=f"{type(exc).__name__}: {exc}")
            finally:
                self.active[key] -= 1
        return handler

    def _tcp_handler(self, listener: TcpListener):
        key = f"tcp:{listener.listen}"

        async def handler(stream: trio.SocketStream) -> None:
            self.active[key] += 1
            try:
                if self.active[key] > listener.max_connections:
                    log("tcp.refused", level="warning", listener=str(listener.listen), reason="too many connections")
                    await trio.aclose_forcefully(stream)
                    return
                await handle_tcp(stream, listener)
            except Exception as exc:
                log("session.crashed", level="error", error=f"{type(exc).__name__}: {exc}")
            finally:
                self.active[key] -= 1
        return handler


class ListenError(Exception):
    pass


async def serve(config: Config, *, server: Server | None = None, on_reload=None) -> None:
    """Run until SIGTERM/SIGINT (twice: at once); SIGHUP calls `on_reload`."""
    server = server or Server(config)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            async def watch_signals():
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        if on_reload is not None:
                            on_reload()
                    else:
                        server.request_shutdown()

            nursery.start_soon(watch_signals)
            await server.run()
            nursery.cancel_scope.cancel()
