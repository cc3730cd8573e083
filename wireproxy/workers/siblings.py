"""What one worker asks of the others, over Unix sockets in the supervisor's private dir (0700).

A CancelRequest is a new connection that the kernel gives to any worker, while the backend key
it names is known only to the worker whose session registered it. A worker that does not know
a key hands the request to its siblings here; each checks its own registry (in constant time)
and acts, and answers one byte, so the asker can still log an unknown key. The same sockets
serve a sibling's metrics text, so /metrics can answer for the whole proxy.

Wire: one request per connection. b"C" + the CancelRequest as the client sent it (length first)
-> b"1" (known here, acted on) or b"0"; b"M" -> this worker's metrics text, then EOF.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from protocols.postgres import CancelRequest, RemoteProtocolError
from protocols.postgres.wire import INT32

from ..telemetry import metrics
from ..telemetry.logs import log

_TIMEOUT = 8.0                           # above send_cancel's own 5 s to the upstream
_MAX_CANCEL = 4 + 4 + 4 + 256           # length, code, pid, the longest secret (protocol 3.2)
_MAX_METRICS = 16 * 1024 * 1024


def socket_path(runtime_dir: Path, index: int) -> Path:
    return Path(runtime_dir) / f"worker-{index}.sock"


class Siblings:
    """This worker's end: a listener for its siblings and a client of theirs."""

    def __init__(self, runtime_dir: Path, index: int, count: int):
        self.path = socket_path(runtime_dir, index)
        self.others = [socket_path(runtime_dir, i) for i in range(1, count + 1) if i != index]
        self.act: Callable[[CancelRequest], Awaitable[bool]] | None = None   # the registry's

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.path.unlink(missing_ok=True)          # a dead predecessor's
        await sock.bind(str(self.path))
        sock.listen(64)
        listener = trio.SocketListener(sock)
        async with listener, trio.open_nursery() as nursery:
            task_status.started()
            while True:
                stream = await listener.accept()
                nursery.start_soon(self._answer, stream)

    async def _answer(self, stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(_TIMEOUT):
                tag = await _read_exactly(stream, 1)
                if tag == b"C":
                    request = await _read_cancel(stream)
                    known = request is not None and self.act is not None and await self.act(request)
                    await stream.send_all(b"1" if known else b"0")
                elif tag == b"M":
                    await stream.send_all(metrics.REGISTRY.render().encode("utf-8"))
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def relay_cancel(self, request: CancelRequest) -> bool:
        """Hand the request to every sibling at once. -> whether one of them knew the key."""
        answers: list[bytes] = []

        async def ask(path: Path) -> None:
            answers.append(await _ask(path, b"C" + request.encode(), 1))

        async with trio.open_nursery() as nursery:
            for path in self.others:
                nursery.start_soon(ask, path)
        return b"1" in answers

    async def metrics_texts(self) -> list[str]:
        """Every reachable sibling's metrics text (a restarting one is left out)."""
        texts: list[str] = []

        async def ask(path: Path) -> None:
            text = await _ask(path, b"M", _MAX_METRICS)
            if text:
                texts.append(text.decode("utf-8", "replace"))

        async with trio.open_nursery() as nursery:
            for path in self.others:
                nursery.start_soon(ask, path)
        return texts


async def _ask(path: Path, request: bytes, limit: int) -> bytes:
    """Send one request, read the answer to EOF (at most `limit` bytes); b"" when unreachable."""
    answer = bytearray()
    with trio.move_on_after(_TIMEOUT):
        try:
            stream = await trio.open_unix_socket(str(path))
        except OSError:
            return b""                  # not started yet, or restarting: it knows no live key
        try:
            await stream.send_all(request)
            while len(answer) <= limit:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                answer += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)
    if len(answer) > limit:
        log("siblings.answer_too_long", level="warning", path=str(path))
        return b""
    return bytes(answer)


async def _read_cancel(stream: trio.SocketStream) -> CancelRequest | None:
    (length,) = INT32.unpack(await _read_exactly(stream, 4))
    if not 12 <= length <= _MAX_CANCEL:
        return None
    try:
        return CancelRequest.decode(await _read_exactly(stream, length - 4))
    except RemoteProtocolError:
        return None


async def _read_exactly(stream: trio.SocketStream, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = await stream.receive_some(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def sum_metrics(texts: list[str]) -> str:
    """Prometheus texts of several workers -> one, each series summed (all are counters and
    gauges of the same registry, so a sum is the whole proxy's figure)."""
    order: list[str] = []            # comment lines and series keys, first seen first
    totals: dict[str, float] = {}
    for text in texts:
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                if line not in totals:
                    order.append(line)
                    totals[line] = 0.0
                continue
            series, _, value = line.rpartition(" ")
            try:
                number = float(value)
            except ValueError:
                continue
            if series not in totals:
                order.append(series)
                totals[series] = 0.0
            totals[series] += number
    return "".join(f"{key}\n" if key.startswith("#") else f"{key} {metrics.number_text(totals[key])}\n"
                   for key in order)
