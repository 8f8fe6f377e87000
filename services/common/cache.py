"""A small in-process cache whose entries expire, for lookups that are read far more than
they change."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

# Cleared wholesale when full: simpler than LRU, and a refill costs one query per key.
MAX_CACHE_ENTRIES = 10_000

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """key → value for `ttl_seconds`; a ttl of 0 or less turns caching off."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self.entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) while the entry is fresh, else (False, None)."""
        entry = self.entries.get(key)
        if entry is None or entry[0] <= self.clock():
            return False, None
        return True, entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        if len(self.entries) >= MAX_CACHE_ENTRIES:
            self.entries.clear()
        self.entries[key] = (self.clock() + self.ttl, value)

    def discard(self, key: K) -> None:
        self.entries.pop(key, None)
