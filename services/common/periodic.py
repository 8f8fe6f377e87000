"""Background work that runs every N seconds (or sooner when woken) until the app stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import structlog

from .tracing import background

log = structlog.get_logger(__name__)


class Periodic:
    """Runs `work` in a task of its own, pausing `interval` seconds between rounds.

    A round that raises is logged as `failed_event` and the next one runs on time, so a
    database or broker outage never ends the loop. `wake()` ends the current pause early.
    With `immediately` the first round runs at start, else after the first pause.

    Use it as an async context manager, which suits an aiohttp cleanup context:
    `async with Periodic(...): yield` starts it, and stops it (cancelled, awaited) at cleanup.
    """

    def __init__(
        self,
        work: Callable[[], Awaitable[Any]],
        interval: float,
        failed_event: str,
        *,
        immediately: bool = False,
    ) -> None:
        self.work = work
        self.interval = interval
        self.failed_event = failed_event
        self.immediately = immediately
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.interval)
        self._wake.clear()

    async def run(self) -> None:
        if not self.immediately:
            await self.pause()
        while True:
            try:
                with background():
                    await self.work()
            except Exception as exc:
                log.warning(self.failed_event, error=repr(exc))
            await self.pause()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> Periodic:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
