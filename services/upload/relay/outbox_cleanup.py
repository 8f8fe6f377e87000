"""Delete the outbox rows of events published by their request: in batches, off the request path."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog
from aiohttp import web

from services.common import outbox
from services.common.db import DATABASE_UNAVAILABLE, DB_POOL
from services.common.periodic import Periodic

from ..keys import OUTBOX_CLEANUP

log = structlog.get_logger(__name__)
# Rows deleted by one statement; a full batch is deleted at once, a smaller one on the tick.
BATCH_SIZE = 200
CLEANUP_INTERVAL_SECONDS = 0.2
DEFER_SECONDS = 1.0


class OutboxCleanup:
    """Collects the ids of published events' outbox rows and deletes them together.

    Should that be lost, the relay publishes the row again and the dispatcher's claim
    absorbs the copy.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.pending: list[int] = []
        self.loop = Periodic(self.flush, CLEANUP_INTERVAL_SECONDS, "outbox_cleanup_failed")

    def add(self, outbox_id: int) -> None:
        self.pending.append(outbox_id)
        if len(self.pending) >= BATCH_SIZE:
            self.loop.wake()

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            await outbox.delete(self.pool, batch)
        except DATABASE_UNAVAILABLE as exc:
            self.pending.extend(batch)
            log.warning("outbox_cleanup_deferred", count=len(batch), error=repr(exc))
            await asyncio.sleep(DEFER_SECONDS)


async def outbox_cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    cleanup = OutboxCleanup(app[DB_POOL])
    app[OUTBOX_CLEANUP] = cleanup
    async with cleanup.loop:
        yield
    with contextlib.suppress(Exception):
        await cleanup.flush()
