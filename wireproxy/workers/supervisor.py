"""`serve` with workers > 1: a supervisor process and N worker processes on the same ports.

The supervisor serves no traffic. It reserves the ports (sockets.py) and tells them (`listening`),
starts the workers with their listening sockets and the config it checked, says `ready` when
every worker serves, forwards SIGHUP (reload) and SIGTERM/SIGINT (graceful; twice: at once) to
each, and restarts a worker that dies, with backoff. A worker that keeps dying before it is
ready means something no restart will fix: the supervisor stops the others and exits 1.
Workers run in their own process group, so a terminal's ^C reaches the supervisor only and
shutdown stays one orderly signal per worker.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import trio

from ..config import Config
from ..server import announce_admin, announce_listener
from ..telemetry.logs import log
from .sockets import SharedPort, reserve_ports
from .worker import Handoff

_MAX_START_FAILURES = 3          # in a row, never ready: give up
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0
_STEADY = 30.0                   # a worker that served this long starts its backoff afresh


async def supervise(config: Config) -> int:
    """Run the workers until a signal ends them. -> exit status (0, or 1 when they kept dying).
    Raises ReserveError, before any worker starts, when a port cannot be had."""
    ports = reserve_ports(config)
    runtime_dir = Path(tempfile.mkdtemp(prefix="wireproxy-workers-"))    # 0700: siblings' sockets
    try:
        for port in ports:
            if port.kind == "admin":
                announce_admin(port.bound, config.token_file)
            else:
                announce_listener(port.kind, port.listener, port.bound)
        return await Supervisor(config, ports, runtime_dir).run()
    finally:
        for port in ports:
            port.close()
        shutil.rmtree(runtime_dir, ignore_errors=True)


class Supervisor:
    def __init__(self, config: Config, ports: list[SharedPort], runtime_dir: Path):
        self.config = config
        self.ports = ports
        self.runtime_dir = runtime_dir
        self.count = config.workers
        self.processes: dict[int, trio.Process] = {}
        self.ready: set[int] = set()
        self.announced = False
        self.stopping = trio.Event()
        self.gave_up = False

    async def run(self) -> int:
        log("workers.starting", workers=self.count)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_signals, signals)
                async with trio.open_nursery() as keepers:
                    for index in range(1, self.count + 1):
                        keepers.start_soon(self._keep, index)
                nursery.cancel_scope.cancel()
        log("shutdown.done", workers=self.count)
        return 1 if self.gave_up else 0

    async def _watch_signals(self, signals) -> None:
        async for signum in signals:
            if signum == signal.SIGHUP:
                log("reload.forwarded", workers=sorted(self.ready))
                for index in sorted(self.ready):      # a starting one reads the files anyway
                    self._signal(index, signal.SIGHUP)
                continue
            if self.stopping.is_set():
                log("shutdown.now", level="warning")
            else:
                log("shutdown.requested", grace_s=self.config.shutdown_grace, workers=self.count)
                self.stopping.set()
            for index in list(self.processes):
                self._signal(index, signal.SIGTERM)

    def _signal(self, index: int, signum: int) -> None:
        process = self.processes.get(index)
        if process is not None and process.returncode is None:
            process.send_signal(signum)

    def _give_up(self, index: int, failures: int) -> None:
        log("workers.failing", level="error", worker=index, attempts=failures,
            note="a worker keeps dying before it serves: stopping (see its log lines above)")
        self.gave_up = True
        self.stopping.set()
        for other in list(self.processes):
            self._signal(other, signal.SIGTERM)

    async def _keep(self, index: int) -> None:
        """Worker `index`, restarted with backoff while the supervisor runs."""
        failures, delay = 0, _BACKOFF_FIRST
        while not self.stopping.is_set():
            started = trio.current_time()
            was_ready, status = await self._run_worker(index)
            if self.stopping.is_set():
                break
            lived = trio.current_time() - started
            log("worker.died", level="error", worker=index, status=_describe(status),
                served=was_ready, lived_s=round(lived, 1))
            failures = 0 if was_ready else failures + 1
            if failures >= _MAX_START_FAILURES:
                self._give_up(index, failures)
                break
            if lived >= _STEADY:
                delay = _BACKOFF_FIRST
            log("worker.restarting", worker=index, in_s=delay)
            with trio.move_on_after(delay):
                await self.stopping.wait()
            delay = min(delay * 2, _BACKOFF_MAX)

    async def _run_worker(self, index: int) -> tuple[bool, int | None]:
        """Start worker `index`, wait for it to end. -> (whether it got ready, exit status)."""
        parent, child = socket.socketpair()
        shares: dict[str, list[socket.socket]] = {}
        try:
            for port in self.ports:
                shares[port.key] = port.listening_sockets()
            fd_map = {key: [sock.fileno() for sock in socks] for key, socks in shares.items()}
            fds = [fd for numbers in fd_map.values() for fd in numbers]
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "wireproxy.workers", str(child.fileno())],
                pass_fds=[child.fileno(), *fds], stdin=subprocess.DEVNULL, process_group=0)
        except OSError as exc:
            parent.close()
            log("worker.start_failed", level="error", worker=index, error=exc.strerror or str(exc))
            return False, None
        finally:
            child.close()
            for socks in shares.values():        # the worker has its copies; a dead one's go with it
                for sock in socks:
                    sock.close()
        self.processes[index] = process
        log("worker.started", worker=index, pid=process.pid)
        handoff = Handoff(self.config, index, self.count, self.runtime_dir, fd_map)
        was_ready = False
        with trio.socket.from_stdlib_socket(parent) as control:
            try:
                await _send_all(control, handoff.encode())
                while answer := await control.recv(64):
                    if b"ready" in answer and not was_ready:
                        was_ready = True
                        self._worker_ready(index)
            except OSError:
                pass                        # it died mid-handoff: its exit status says why
            status = await process.wait()
        self.ready.discard(index)
        self.processes.pop(index, None)
        return was_ready, status

    def _worker_ready(self, index: int) -> None:
        self.ready.add(index)
        if self.announced:
            log("worker.serving", worker=index, pid=self.processes[index].pid)     # a restarted one
        elif len(self.ready) == self.count and not self.stopping.is_set():
            self.announced = True
            log("ready", listeners=sum(len(port.anchors) for port in self.ports), workers=self.count,
                pids=[self.processes[i].pid for i in sorted(self.ready)])


async def _send_all(sock, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = await sock.send(view)
        view = view[sent:]


def _describe(status: int | None) -> str:
    if status is None:
        return "not started"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit {status}"
