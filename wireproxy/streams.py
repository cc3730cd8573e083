"""Small trio helpers shared by the proxies: ordered writes and upstream connects."""

from __future__ import annotations

import socket

import trio

BUFSIZE = 65536


class OrderedWriter:
    """Lets two tasks write one stream without interleaving and in call order.

    `await send(data)` queues `data` at once (before its first await), so the order of calls is
    the order on the wire; whichever caller finds the stream idle writes everything queued, the
    others wait for it to finish (backpressure). The uncontended path is a plain send_all: no
    lock, no extra scheduling point, which matters on the hot path.
    """

    __slots__ = ("stream", "_queue", "_busy", "_idle")

    def __init__(self, stream: trio.abc.SendStream):
        self.stream = stream
        self._queue: list[bytes] = []
        self._busy = False
        self._idle = trio.lowlevel.ParkingLot()

    async def send(self, data: bytes) -> None:
        if self._busy:
            self._queue.append(data)
            while self._busy:
                await self._idle.park()
            return
        self._busy = True
        try:
            await self.stream.send_all(data)
            while self._queue:
                chunk = b"".join(self._queue)
                self._queue.clear()
                await self.stream.send_all(chunk)
        finally:
            self._busy = False
            if self._idle:
                self._idle.unpark_all()


async def connect(host: str, port: int, timeout: float) -> trio.SocketStream:
    """Open a TCP stream to an upstream, with a deadline; raises OSError on any failure."""
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(host, port)
    except trio.TooSlowError:
        raise OSError(f"timed out after {timeout:g}s") from None
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return stream


def peer_of(stream) -> tuple[str, int]:
    try:
        host, port, *_ = stream.socket.getpeername()
        return host, port
    except (OSError, AttributeError):
        return "?", 0
