"""A bare-socket Postgres client built on our codec, for tests that must misbehave on purpose."""

from __future__ import annotations

import socket

from protocols.postgres import Framer, StartupMessage, decode_backend
from protocols.postgres.startup import PROTOCOL_3_0


class RawClient:
    def __init__(self, port: int, *, user: str = "postgres", database: str = "postgres", timeout: float = 20):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.framer = Framer(1 << 31)
        self.messages: list = []
        self.user, self.database = user, database

    def startup(self, version: int = PROTOCOL_3_0) -> list:
        self.send(StartupMessage({"user": self.user, "database": self.database}, version).encode())
        return self.read_until("ReadyForQuery", "ErrorResponse")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> list:
        """Read one chunk; [] on EOF."""
        data = self.sock.recv(65536)
        if not data:
            return []
        messages = [decode_backend(code, message[5:]) for code, message in self.framer.feed(data)]
        self.messages += messages
        return messages or [None]

    def read_until(self, *names: str) -> list:
        got = []
        while True:
            chunk = self.read()
            if not chunk:
                return got
            got += [m for m in chunk if m is not None]
            if any(type(m).__name__ in names for m in got):
                return got

    def read_all(self) -> list:
        got = []
        try:
            while chunk := self.read():
                got += [m for m in chunk if m is not None]
        except OSError:
            pass
        return got

    def close(self) -> None:
        self.sock.close()
