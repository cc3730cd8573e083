"""Holds: the client's input kept back, in order, until every reason to wait is gone.

The relay holds the client's next messages while the server answers one of our own lookups,
while a cancel for a cut result is on its way (so it cannot land on the next statement), and
while a statement waits for a human's approval. Holds nest; the input comes back whole, in the
order it came, when the last one is released.
"""

from __future__ import annotations


class Holds:
    __slots__ = ("_count", "held")

    def __init__(self) -> None:
        self._count = 0
        self.held: list[tuple[int, bytes]] | None = None   # framed client input waiting

    @property
    def active(self) -> bool:
        return self.held is not None

    def hold(self) -> None:
        self._count += 1
        if self.held is None:
            self.held = []

    def keep(self, items: list[tuple[int, bytes]]) -> None:
        self.held.extend(items)

    def release(self) -> list[tuple[int, bytes]] | None:
        """Let go of one hold; the input to replay when it was the last one."""
        if self._count <= 0:
            raise RuntimeError("release without a hold")
        self._count -= 1
        if self._count:
            return None
        held, self.held = self.held, None
        return held
