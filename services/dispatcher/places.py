"""The deliveries one dispatcher holds at once: DISPATCH_PREFETCH in all, and of those only
a share not yet sending (claiming, or waiting for their endpoint's slot).

The share keeps a backlog to one fast endpoint from filling the whole window with
deliveries that wait for its slots: they would only cost time in the event loop (and be
parked when their wait grew past a second), while the messages behind them are as well
kept in the queue. Deliveries that are sending hold only a place in all, so thousands may
be open to slow endpoints at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

# One place in this many may be held by a delivery that is not yet sending.
UNSENT_SHARE = 4


class Place:
    """One delivery's place: `sending()` gives back its share of the unsent ones once its
    request starts, `leave()` the rest when it is done (each at most once)."""

    __slots__ = ("places", "unsent")

    def __init__(self, places: Places) -> None:
        self.places = places
        self.unsent = True

    def sending(self) -> None:
        if self.unsent:
            self.unsent = False
            self.places.unsent.release()

    def leave(self) -> None:
        self.sending()
        self.places.total.release()

    def left(self, _task: asyncio.Task[Any]) -> None:
        """`leave` as a task's done callback."""
        self.leave()


class Places:
    def __init__(self, total: int) -> None:
        self.total = asyncio.Semaphore(total)
        self.unsent = asyncio.Semaphore(max(1, total // UNSENT_SHARE))

    async def take(self) -> Place:
        """A place, once there is one in all and one among the unsent."""
        await self.total.acquire()
        try:
            await self.unsent.acquire()
        except BaseException:
            self.total.release()
            raise
        return Place(self)
