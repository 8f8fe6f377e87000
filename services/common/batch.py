"""Run the writes that many requests or deliveries ask for at the same moment as one statement."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 256


def own_copy(exc: Exception) -> Exception:
    """The same error for each caller, as its own object: raised in many tasks at once,
    one object would collect all of their tracebacks."""
    try:
        return copy.copy(exc)
    except Exception:  # an exception class that cannot be rebuilt from its args
        return exc


class Batcher(Generic[Item, Result]):
    """`await batcher(item)` runs `run_batch` over every item queued meanwhile.

    One batch is in flight at a time: while it runs, the next one fills, so under load
    each round trip (and each commit) serves many deliveries, and when idle an item
    waits for nothing but its own statement. Two items with the same key never share a
    batch (one statement may not update a row twice); the later one waits for the next.
    A failed batch fails each of its callers with (a copy of) the same error.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Item]], Awaitable[list[Result]]],
        key: Callable[[Item], Hashable],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.run_batch = run_batch
        self.key = key
        self.max_batch = max_batch
        self.queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self.runner: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.queue.append((item, future))
        if self.runner is None:
            self.runner = asyncio.create_task(self.run())
        return await future

    def take_batch(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        later: list[tuple[Item, asyncio.Future[Result]]] = []
        keys: set[Hashable] = set()
        for entry in self.queue:
            if entry[1].done():  # its caller was cancelled
                continue
            key = self.key(entry[0])
            if key in keys or len(batch) >= self.max_batch:
                later.append(entry)
            else:
                keys.add(key)
                batch.append(entry)
        self.queue = later
        return batch

    async def run(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while batch := self.take_batch():
                try:
                    results = await self.run_batch([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(own_copy(exc))
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        except asyncio.CancelledError:
            # Shutting down: no caller may wait for a batch that will never run.
            for _, future in batch + self.queue:
                future.cancel()
            self.queue = []
            raise
        finally:
            self.runner = None
