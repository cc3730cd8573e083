"""The listening ports that several worker processes share (SO_REUSEPORT).

The supervisor reserves every port once: for each resolved address of each listener it binds an
anchor socket with SO_REUSEPORT and never listens on it, so port 0 becomes one real port that
all workers share, and a worker that dies and comes back gets the same one. Each worker is
handed its own listening socket per address, bound to that port: the kernel spreads new
connections over the listening ones, and a dead worker's socket (closed with it) takes no more.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from ..config import Config

_BACKLOG = 4096


class ReserveError(Exception):
    """A port cannot be had: in use, not permitted, an unknown host. The one line to show."""


@dataclass
class SharedPort:
    key: str                    # "postgres:127.0.0.1:6432": how Server names the listener
    kind: str                   # postgres | tcp | http | admin
    listener: object            # the config entry (None for admin)
    anchors: list[socket.socket] = field(default_factory=list)

    @property
    def bound(self) -> list[tuple[str, int]]:
        return [anchor.getsockname()[:2] for anchor in self.anchors]

    def listening_sockets(self) -> list[socket.socket]:
        """Fresh listening sockets on this port, one per address: one worker's share."""
        made = []
        try:
            for anchor in self.anchors:
                sock = _reuseport_socket(anchor.family)
                sock.bind(anchor.getsockname())
                sock.listen(_BACKLOG)
                made.append(sock)
        except OSError:
            for sock in made:
                sock.close()
            raise
        return made

    def close(self) -> None:
        for anchor in self.anchors:
            anchor.close()


def listeners_of(config: Config) -> list[tuple[str, str, object]]:
    """(key, kind, listener) for every port the config serves, in the order Server opens them."""
    found = [(f"{kind}:{entry.listen}", kind, entry)
             for kind, entries in (("postgres", config.postgres), ("tcp", config.tcp), ("http", config.http))
             for entry in entries]
    if config.admin.listen is not None:
        found.insert(0, (f"admin:{config.admin.listen}", "admin", None))
    return found


def reserve_ports(config: Config) -> list[SharedPort]:
    """Every listener's port, reserved; ReserveError (the others closed) when one cannot be."""
    ports: list[SharedPort] = []
    try:
        for key, kind, listener in listeners_of(config):
            address = config.admin.listen if kind == "admin" else listener.listen
            port = SharedPort(key, kind, listener)
            ports.append(port)
            for family, sockaddr in _resolve(address.host, address.port):
                anchor = _reuseport_socket(family)
                port.anchors.append(anchor)
                try:
                    anchor.bind(sockaddr)
                except OSError as exc:
                    raise ReserveError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    except BaseException:
        for port in ports:
            port.close()
        raise
    return ports


def _resolve(host: str, port: int) -> list[tuple[int, tuple]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ReserveError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    seen: list[tuple[int, tuple]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if (family, sockaddr) not in seen:
            seen.append((family, sockaddr))
    return seen


def _reuseport_socket(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    except OSError:
        sock.close()
        raise
    return sock
