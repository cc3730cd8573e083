"""Bounded LRUs of SQL facts, with hit/miss counters.

Levels. By (dialect, SQL text): a repeated statement costs one dict lookup. By shape,
PostgreSQL only (facts.extract): a statement that differs from one seen before only in its
literals costs PostgreSQL's C-level normalize() and no parse, when it is a plain
SELECT/INSERT/UPDATE/DELETE whose facts ignored every literal (pgfacts.normalized_shareable);
otherwise one parse and no tree walk, keyed by the parse tree with constants' values blanked,
when the facts ignored every constant's value (pgfacts.shape_key). Parse failures are cached
too, so a client repeating a bad statement costs one parse. Bounded by entry count and by the
total length of the cached texts, so huge distinct statements cannot make the cache grow
without limit.
"""

from __future__ import annotations

from collections import OrderedDict

from wireproxy.policy.facts import QueryFacts, SqlParseError, extract

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_CHARS = 32 * 1024 * 1024
UNCACHED_LONGER_THAN = 1024 * 1024   # texts this long are judged every time, never stored


class _ShapeCache:
    def __init__(self, max_entries: int, max_chars: int):
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[str, QueryFacts] = OrderedDict()
        self._chars = 0
        self.hits = 0

    def get(self, key: str) -> QueryFacts | None:
        facts = self._entries.get(key)
        if facts is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return facts

    def put(self, key: str, facts: QueryFacts) -> None:
        if len(key) > UNCACHED_LONGER_THAN or key in self._entries:
            return
        self._entries[key] = facts
        self._chars += len(key)
        while self._entries and (len(self._entries) > self.max_entries or self._chars > self.max_chars):
            old, _ = self._entries.popitem(last=False)
            self._chars -= len(old)

    def __len__(self) -> int:
        return len(self._entries)


class FactsCache:
    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_chars: int = DEFAULT_MAX_CHARS):
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[tuple[str, str], QueryFacts | SqlParseError] = OrderedDict()
        self._chars = 0
        self._shapes = _ShapeCache(max_entries, max_chars)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def shape_hits(self) -> int:
        return self._shapes.hits

    def get(self, sql: str, dialect: str = "postgres") -> QueryFacts:
        """Facts of `sql`, from the cache when seen before. Raises SqlParseError only."""
        key = (dialect, sql)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
            try:
                entry = extract(sql, dialect, shapes=self._shapes)
            except SqlParseError as exc:
                entry = exc
            if len(sql) <= UNCACHED_LONGER_THAN and not getattr(entry, "internal", False):
                self._store(key, entry)
        if isinstance(entry, SqlParseError):
            raise SqlParseError(entry.message, internal=entry.internal)
        return entry

    def _store(self, key: tuple[str, str], entry) -> None:
        self._entries[key] = entry
        self._chars += len(key[1])
        while self._entries and (len(self._entries) > self.max_entries or self._chars > self.max_chars):
            (_, old_sql), _ = self._entries.popitem(last=False)
            self._chars -= len(old_sql)

    def clear(self) -> None:
        self._entries.clear()
        self._chars = 0
