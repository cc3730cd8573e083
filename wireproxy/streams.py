"""Small trio helpers shared by the proxies: ordered writes, direct socket I/O, connects."""

from __future__ import annotations

import socket

import trio
from trio.lowlevel import checkpoint, wait_readable, wait_writable

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


class DirectSocket:
    """receive_some/send_all on the plain socket under a trio SocketStream, for the hot path.

    trio's own calls try the socket first and, when that works, still pass through the
    scheduler (checkpoint_if_cancelled, then cancel_shielded_checkpoint): two scheduling steps
    per call, four per round trip, and a recv that fails with EAGAIN whenever the answer is not
    in yet, which in request/response traffic is nearly always. Here a receive waits for
    readability first (one scheduling step, the only one), unless the last read filled the
    buffer (a result streaming in: read at once, after a checkpoint so other sessions run), and
    a send that the kernel takes whole does not yield at all. Errors are trio's: a reset or
    closed socket raises BrokenResourceError (ClosedResourceError if closed under a wait)."""

    __slots__ = ("_more", "_sock", "stream")

    def __init__(self, stream: trio.SocketStream, sock: socket.socket):
        self.stream = stream
        self._sock = sock
        self._more = False          # the last read filled the buffer: more is probably waiting

    async def receive_some(self, max_bytes: int = BUFSIZE) -> bytes:
        sock = self._sock
        if sock.fileno() == -1:
            raise trio.ClosedResourceError("the socket was closed")
        try:
            if self._more:
                await checkpoint()
                try:
                    data = sock.recv(max_bytes)
                    self._more = len(data) == max_bytes
                    return data
                except BlockingIOError:
                    pass
            while True:
                await wait_readable(sock)
                try:
                    data = sock.recv(max_bytes)
                    self._more = len(data) == max_bytes
                    return data
                except BlockingIOError:
                    pass
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    async def send_all(self, data: bytes) -> None:
        sock = self._sock
        try:
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            with memoryview(data) as view:
                while sent < len(view):
                    await wait_writable(sock)
                    try:
                        sent += sock.send(view[sent:])
                    except BlockingIOError:
                        pass
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc


def direct(stream):
    """`stream` with DirectSocket's calls when it is a plain trio SocketStream (TLS and test
    streams stay as they are)."""
    sock = getattr(getattr(stream, "socket", None), "_sock", None) if type(stream) is trio.SocketStream else None
    return DirectSocket(stream, sock) if isinstance(sock, socket.socket) else stream


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
