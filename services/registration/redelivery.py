"""Redeliver and recover: ask the dispatcher for a new round of attempts of a delivery.

The database is changed first (the delivery is pending again and due now), then the
message is published with confirms. Should the publish fail, the dispatcher's sweeper
finds the overdue pending delivery and publishes it itself, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime

import asyncpg
import structlog

from services.common import deliveries
from services.common.backoff import Backoff, retry
from services.common.broker import BROKER_ERRORS, Broker
from services.common.db import DATABASE_ERRORS
from services.common.messages import DeliveryMessage

log = structlog.get_logger(__name__)

RECOVER_BATCH_SIZE = 500
# A recover rides out a short database outage between batches, then gives up (logged).
RECOVER_BACKOFF = Backoff(first=0.5, cap=5.0, give_up_after=60.0)


class PublishFailed(Exception):
    """The broker did not confirm the message."""


async def publish_attempt(
    broker: Broker,
    delivery_id: uuid.UUID,
    webhook_id: uuid.UUID,
    attempt: int,
    request_id: str | None,
) -> None:
    """Ask the dispatcher for attempt `attempt` of the delivery, due now (confirmed)."""
    message = DeliveryMessage(delivery_id, attempt, 0, request_id, webhook_id)
    try:
        await broker.send_to_dispatch(message)
    except BROKER_ERRORS as exc:
        raise PublishFailed(repr(exc)) from exc


class Recoveries:
    """The recover jobs running in this process; cancelled and awaited at shutdown."""

    def __init__(self, pool: asyncpg.Pool, broker: Broker) -> None:
        self.pool = pool
        self.broker = broker
        self.tasks: set[asyncio.Task[None]] = set()

    def start(
        self, webhook_id: uuid.UUID, since: datetime, until: datetime, request_id: str | None
    ) -> None:
        task = asyncio.create_task(self.run(webhook_id, since, until, request_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(
        self, webhook_id: uuid.UUID, since: datetime, until: datetime, request_id: str | None
    ) -> None:
        structlog.contextvars.bind_contextvars(request_id=request_id, webhook_id=str(webhook_id))
        after: tuple[datetime, uuid.UUID] | None = None
        restarted = published = 0
        try:
            while True:
                rows, after = await self.next_batch(webhook_id, since, until, after)
                restarted += len(rows)
                published += await self.publish_batch(rows, request_id)
                if after is None:
                    break
        except asyncio.CancelledError:
            log.warning("recover_interrupted", restarted=restarted, published=published)
            raise
        except Exception:
            log.exception("recover_failed", restarted=restarted, published=published)
            return
        log.info("recover_finished", restarted=restarted, published=published)

    async def next_batch(
        self,
        webhook_id: uuid.UUID,
        since: datetime,
        until: datetime,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> tuple[list[asyncpg.Record], tuple[datetime, uuid.UUID] | None]:
        return await retry(
            lambda: deliveries.restart_recoverable(
                self.pool, webhook_id, since, until, after, RECOVER_BATCH_SIZE
            ),
            DATABASE_ERRORS,
            RECOVER_BACKOFF,
            "recover_batch_retrying",
        )

    async def publish_batch(self, rows: list[asyncpg.Record], request_id: str | None) -> int:
        """Publish the batch's messages concurrently; failures are left to the sweeper."""
        results = await asyncio.gather(
            *(
                publish_attempt(
                    self.broker, row["id"], row["webhook_id"], row["attempt_count"] + 1, request_id
                )
                for row in rows
            ),
            return_exceptions=True,
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        for failure in failures:
            if not isinstance(failure, PublishFailed):
                raise failure
        if failures:
            log.warning("recover_publish_deferred", count=len(failures), error=str(failures[0]))
        return len(rows) - len(failures)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
