"""The outbox relay: publish messages that were recorded but not confirmed by the broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import structlog
from aiohttp import web

from services.common import outbox
from services.common.broker import BROKER, Broker
from services.common.db import DB_POOL
from services.common.messages import MalformedMessage, from_outbox
from services.common.periodic import Periodic
from services.common.tracing import continued

from ..keys import SETTINGS
from ..metrics import EVENTS_PUBLISHED, OUTBOX_PENDING

log = structlog.get_logger(__name__)
BATCH_SIZE = 200
# Rows younger than this are still being published by their own request.
MIN_AGE_SECONDS = 3


async def publish_row(broker: Broker, row: asyncpg.Record, publish_timeout: float) -> None:
    try:
        message = from_outbox(row["payload"], row["routing_key"], row["request_id"])
    except MalformedMessage as exc:
        # Nothing the dispatcher could deliver (it would drop the message): the row goes.
        log.warning("outbox_row_dropped", outbox_id=row["id"], reason=str(exc))
        return
    # Published in the trace of the request that recorded it, however much later.
    with continued(row["trace_context"]):
        await broker.publish_recorded(message, timeout=publish_timeout)


async def relay_batch(pool: asyncpg.Pool, broker: Broker, publish_timeout: float) -> int:
    """Publish one batch of old outbox rows; safe in several replicas (SKIP LOCKED)."""
    published: list[int] = []
    async with pool.acquire() as conn, conn.transaction():
        rows = await outbox.take_old(conn, MIN_AGE_SECONDS, BATCH_SIZE)
        # Confirms are awaited together: a backlog drains at the broker's pace.
        outcomes = await asyncio.gather(
            *(publish_row(broker, row, publish_timeout) for row in rows),
            return_exceptions=True,
        )
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("outbox_publish_failed", outbox_id=row["id"], error=repr(outcome))
            else:
                published.append(row["id"])
        if published:
            await outbox.delete(conn, published)
    if published:
        EVENTS_PUBLISHED.labels("relay").inc(len(published))
        log.info("outbox_relayed", count=len(published))
    return len(published)


async def relay_outbox(app: web.Application) -> None:
    """Publish the whole backlog, batch after batch, while the broker is connected."""
    pool, broker = app[DB_POOL], app[BROKER]
    OUTBOX_PENDING.set(await outbox.count(pool))
    if broker.connected:
        timeout = app[SETTINGS].publish_timeout_seconds
        while await relay_batch(pool, broker, timeout) == BATCH_SIZE:
            pass


async def relay_ctx(app: web.Application) -> AsyncIterator[None]:
    relay = Periodic(
        lambda: relay_outbox(app),
        app[SETTINGS].relay_interval_seconds,
        "outbox_relay_error",
        immediately=True,
    )
    async with relay:
        yield
