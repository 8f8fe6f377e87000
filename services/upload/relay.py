"""The outbox relay: publish events that were recorded but not confirmed by the broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog
from aiohttp import web

from services.common.broker import BROKER, Broker
from services.common.db import DATABASE_UNAVAILABLE, DB_POOL
from services.common.messages import event_message

from . import db
from .keys import OUTBOX_CLEANUP, SETTINGS
from .metrics import EVENTS_PUBLISHED, OUTBOX_PENDING

log = structlog.get_logger(__name__)
BATCH_SIZE = 200
# Rows younger than this are still being published by their own request.
MIN_AGE_SECONDS = 3
CLEANUP_INTERVAL_SECONDS = 0.2


async def relay_batch(pool: asyncpg.Pool, broker: Broker, publish_timeout: float) -> int:
    """Publish one batch of old outbox rows; safe in several replicas (SKIP LOCKED)."""
    published: list[int] = []
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """
            SELECT id, routing_key, payload, request_id FROM outbox
            WHERE created_at < now() - make_interval(secs => $1)
            ORDER BY id LIMIT $2
            FOR UPDATE SKIP LOCKED
            """,
            MIN_AGE_SECONDS,
            BATCH_SIZE,
        )
        # Confirms are awaited together: a backlog drains at the broker's pace.
        outcomes = await asyncio.gather(
            *(
                broker.publish(
                    event_message(row["payload"], row["request_id"]),
                    row["routing_key"],
                    timeout=publish_timeout,
                )
                for row in rows
            ),
            return_exceptions=True,
        )
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("outbox_publish_failed", outbox_id=row["id"], error=repr(outcome))
            else:
                published.append(row["id"])
        if published:
            await db.delete_outbox_rows(conn, published)
    if published:
        EVENTS_PUBLISHED.labels("relay").inc(len(published))
        log.info("outbox_relayed", count=len(published))
    return len(published)


async def run_relay(app: web.Application) -> None:
    settings = app[SETTINGS]
    while True:
        try:
            OUTBOX_PENDING.set(await db.count_outbox(app[DB_POOL]))
            if app[BROKER].connected:
                while (
                    await relay_batch(app[DB_POOL], app[BROKER], settings.publish_timeout_seconds)
                    == BATCH_SIZE
                ):
                    pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("outbox_relay_error", error=repr(exc))
        await asyncio.sleep(settings.relay_interval_seconds)


class OutboxCleanup:
    """Deletes the outbox rows of published events in batches, off the request path."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.pending: list[int] = []
        self.wake = asyncio.Event()

    def add(self, outbox_id: int) -> None:
        self.pending.append(outbox_id)
        if len(self.pending) >= BATCH_SIZE:
            self.wake.set()

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            await db.delete_outbox_rows(self.pool, batch)
        except DATABASE_UNAVAILABLE as exc:
            self.pending.extend(batch)
            log.warning("outbox_cleanup_deferred", count=len(batch), error=repr(exc))
            await asyncio.sleep(1.0)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), CLEANUP_INTERVAL_SECONDS)
            self.wake.clear()
            await self.flush()


async def relay_ctx(app: web.Application) -> AsyncIterator[None]:
    cleanup = OutboxCleanup(app[DB_POOL])
    app[OUTBOX_CLEANUP] = cleanup
    tasks = [asyncio.create_task(run_relay(app)), asyncio.create_task(cleanup.run())]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with contextlib.suppress(Exception):
        await cleanup.flush()
