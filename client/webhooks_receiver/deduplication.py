"""Remember which webhook-ids were already handled, because delivery is at-least-once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

# The sender's default retry schedule spans about 27 hours; remember a little longer.
DEFAULT_MAX_AGE = timedelta(hours=48)
DEFAULT_MAX_SIZE = 100_000


class Deduplicator:
    """An in-memory, bounded set of recently seen webhook-ids.

    Delivery is at-least-once: the same delivery (same `webhook-id`) can arrive twice, for
    instance when the sender's process died after your endpoint answered but before the
    answer was recorded, or when someone redelivers it on purpose. Call `seen_before`
    with `event.id` before acting on an event and skip it when it returns True.

    An id is forgotten when it has not been seen for `max_age`, or when `max_size` other ids
    were seen more recently (least recently seen first). Memory is per process and lost on
    restart: several processes, or effects that must never repeat, need the same check
    against durable storage (e.g. a unique constraint on the webhook-id).
    """

    def __init__(
        self,
        max_size: int = DEFAULT_MAX_SIZE,
        max_age: timedelta = DEFAULT_MAX_AGE,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        self._max_size = max_size
        self._max_age = max_age.total_seconds()
        self._clock = clock
        # id -> when it was last seen; ordered from least to most recently seen, which is
        # also oldest to newest, so both kinds of eviction pop from the front.
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, webhook_id: str) -> bool:
        """True if this id was already seen; either way it is now marked as seen.

        Checking and marking are one step, so of two concurrent copies exactly one gets False.
        """
        with self._lock:
            now = self._clock()
            self._expire(now)
            seen = webhook_id in self._seen
            self._seen[webhook_id] = now
            self._seen.move_to_end(webhook_id)
            if len(self._seen) > self._max_size:
                self._seen.popitem(last=False)
            return seen

    def forget(self, webhook_id: str) -> None:
        """Unmark an id whose handling failed, so that the sender's retry is handled."""
        with self._lock:
            self._seen.pop(webhook_id, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest = next(iter(self._seen.values()))
            if now - oldest < self._max_age:
                return
            self._seen.popitem(last=False)
