"""One worker process: a normal Server, one trio loop, on the sockets its supervisor made.

Started as `python -m wireproxy.workers FD` with FD one end of a socketpair. The
supervisor writes the handoff there (length, then a pickle: the checked config, this worker's
index, the listening sockets' fds it passed down, the private runtime dir); the worker answers
b"ready\\n" once it serves. EOF on that socket means the supervisor is gone: the worker shuts
down gracefully rather than live on unsupervised.
"""

from __future__ import annotations

import functools
import pickle
import signal
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ..config import Config, ConfigError
from ..telemetry.logs import install_stdlib_bridge, log, set_context
from .siblings import Siblings, sum_metrics

_LENGTH = struct.Struct(">I")
_MAX_HANDOFF = 64 * 1024 * 1024


@dataclass
class Handoff:
    config: Config
    index: int                  # 1..count, on every log line as `worker`
    count: int
    runtime_dir: Path
    sockets: dict[str, list[int]] = field(default_factory=dict)   # listener key -> fds

    def encode(self) -> bytes:
        data = pickle.dumps(self)
        return _LENGTH.pack(len(data)) + data


def read_handoff(control: socket.socket) -> Handoff:
    """The supervisor's handoff, read before trio starts (the supervisor wrote it whole)."""
    (length,) = _LENGTH.unpack(_receive_exactly(control, _LENGTH.size))
    if length > _MAX_HANDOFF:
        raise ValueError(f"handoff of {length} bytes")
    handoff = pickle.loads(_receive_exactly(control, length))   # from our own parent, over a socketpair
    if not isinstance(handoff, Handoff):
        raise TypeError("the handoff is not a Handoff")
    return handoff


def _receive_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError("the supervisor closed the control socket during the handoff")
        data += chunk
    return bytes(data)


def main(argv: list[str]) -> int:
    # A SIGHUP before serve() listens for it must not kill a starting worker (default action);
    # it reads the rule files as it starts anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    control = socket.socket(fileno=int(argv[0]))
    handoff = read_handoff(control)
    set_context(worker=handoff.index)
    install_stdlib_bridge()
    from ..server import Server
    sockets = {key: [socket.socket(fileno=fd) for fd in fds] for key, fds in handoff.sockets.items()}
    try:
        server = Server(handoff.config, sockets=sockets)
    except ConfigError as exc:       # a rule file broke after the supervisor checked it
        log("worker.config_error", level="error", error=str(exc))
        return 2
    siblings = Siblings(handoff.runtime_dir, handoff.index, handoff.count)
    server.cancels.siblings = siblings.relay_cancel
    siblings.act = server.cancels.act
    server.render_metrics = functools.partial(_whole_metrics, siblings)
    trio.run(_run, server, siblings, control)
    return 0


async def _run(server, siblings: Siblings, control: socket.socket) -> None:
    from ..server import serve
    control = trio.socket.from_stdlib_socket(control)
    async with trio.open_nursery() as nursery:
        await nursery.start(siblings.serve)         # before sessions: a sibling may relay a cancel

        async def serving(task_status=trio.TASK_STATUS_IGNORED) -> None:
            await serve(server.config, server=server, task_status=task_status)
            nursery.cancel_scope.cancel()

        await nursery.start(serving)
        await control.send(b"ready\n")
        nursery.start_soon(_watch_supervisor, control, server)


async def _watch_supervisor(control, server) -> None:
    try:
        while await control.recv(64):
            pass
    except OSError:
        pass
    log("worker.orphaned", level="warning", note="the supervisor is gone: shutting down")
    server.request_shutdown()


async def _whole_metrics(siblings: Siblings) -> str:
    from ..telemetry import metrics
    return sum_metrics([metrics.REGISTRY.render(), *await siblings.metrics_texts()])
