"""Consume the dispatch queue with many deliveries in flight; drain on stop; sweep stalled work."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from services.common.broker import BROKER
from services.common.consuming import Consumer
from services.common.db import DB_POOL
from services.common.messages import DISPATCH_QUEUE, DeliveryMessage
from services.common.periodic import Periodic

from .client import HTTP_SESSION
from .deliver import Dispatcher
from .keys import DISPATCHER, SETTINGS
from .sweep import sweep_stalled

log = structlog.get_logger(__name__)


# A message announces up to 64 deliveries: taking DISPATCH_PREFETCH of them at once would
# hold far more deliveries than may be in flight (a backlog's hundred thousand, in memory).
MESSAGES_PER_PLACE = 8


def messages_held(prefetch: int) -> int:
    """The messages taken from the queue at once: enough to keep DISPATCH_PREFETCH
    deliveries in flight when they come in batches, without holding a backlog."""
    return max(1, prefetch // MESSAGES_PER_PLACE)


async def dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    dispatcher = Dispatcher(settings, app[DB_POOL], app[BROKER], app[HTTP_SESSION])
    app[DISPATCHER] = dispatcher
    decode = DeliveryMessage.decode_all
    consumer = Consumer(
        app[BROKER], DISPATCH_QUEUE, messages_held(settings.prefetch), decode, dispatcher.handle
    )
    consumer.start()
    pool, broker = app[DB_POOL], app[BROKER]
    sweeper = Periodic(
        lambda: sweep_stalled(pool, broker, settings.delivery_timeout_seconds),
        settings.sweep_interval_seconds,
        "sweep_failed",
    )
    sweeper.start()
    yield
    await sweeper.stop()
    await consumer.stop(settings.shutdown_grace_seconds)
