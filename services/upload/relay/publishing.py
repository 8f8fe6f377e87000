"""Publish what was just recorded, confirmed; the outbox relay publishes whatever this misses."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import structlog
from aiohttp import web

from services.common.broker import BROKER, Broker
from services.common.messages import RecordedMessage

from ..keys import ANNOUNCER, OUTBOX_CLEANUP, SETTINGS
from ..metrics import EVENTS_PUBLISHED
from .outbox_cleanup import OutboxCleanup

log = structlog.get_logger(__name__)


async def publish_recorded(
    broker: Broker,
    cleanup: OutboxCleanup,
    recorded: list[tuple[int, RecordedMessage]],
    timeout: float,
    publisher: str,
) -> int:
    """Publish each (outbox id, message), confirms awaited together; how many went.

    A published message's outbox row is deleted in batches, off this path; if that is
    lost the relay publishes the row again and the consumer absorbs the copy (the
    dispatcher's claim, the fan-out's once-per-webhook insert).
    """
    outcomes = await asyncio.gather(
        *(broker.publish_recorded(message, timeout) for _, message in recorded),
        return_exceptions=True,
    )
    published = 0
    for (outbox_id, _), outcome in zip(recorded, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            log.warning("event_publish_deferred", outbox_id=outbox_id, error=repr(outcome))
        else:
            published += 1
            cleanup.add(outbox_id)
    if published:
        EVENTS_PUBLISHED.labels(publisher).inc(published)
    return published


class Announcer:
    """Publishes each outbox row once, however many requests recorded it: the uploads (or
    events) recorded by one statement share one message (a DeliveryBatch).

    A request answers once its rows are committed (durable), not once the broker has
    confirmed the message: waiting for a quorum queue's confirm would hold every request
    for the broker's round of replication and fsync, and the outbox makes the wait
    unneeded (a message not confirmed is published by the relay). The publishes under way
    are awaited, up to the publish timeout, when the service stops.
    """

    def __init__(self) -> None:
        self.publishing: dict[int, asyncio.Future[int]] = {}

    def publish(self, outbox_id: int, send: Callable[[], Coroutine[Any, Any, int]]) -> None:
        """`send()` publishes the row in the background, unless it is under way already."""
        if outbox_id in self.publishing:
            return
        publishing = asyncio.ensure_future(send())
        self.publishing[outbox_id] = publishing
        publishing.add_done_callback(lambda _: self.publishing.pop(outbox_id, None))

    def publish_all(
        self,
        broker: Broker,
        cleanup: OutboxCleanup,
        announced: Sequence[tuple[int, RecordedMessage]],
        timeout: float,
    ) -> None:
        """Each (outbox id, message) once, in the background."""
        for outbox_id, msg in announced:
            self.publish(
                outbox_id,
                functools.partial(
                    publish_recorded, broker, cleanup, [(outbox_id, msg)], timeout, "request"
                ),
            )

    async def drain(self, timeout: float) -> None:
        """Wait for the publishes under way (stopping); the relay publishes what is left."""
        if self.publishing:
            await asyncio.wait(list(self.publishing.values()), timeout=timeout)


def publish_now(app: web.Application, outbox_id: int, message: RecordedMessage) -> None:
    """Publish a request's message right away, in the background (once, if other
    requests share it); if the broker is slow or down the outbox relay publishes it
    later."""
    timeout = app[SETTINGS].publish_timeout_seconds
    app[ANNOUNCER].publish_all(app[BROKER], app[OUTBOX_CLEANUP], [(outbox_id, message)], timeout)


async def announcer_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[ANNOUNCER].drain(app[SETTINGS].publish_timeout_seconds)
