"""Consume the dispatch queue with many deliveries in flight; drain on stop; sweep stalled work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aio_pika.abc import AbstractQueue
from aiohttp import web

from services.common.broker import BROKER, QUORUM
from services.common.db import DB_POOL
from services.common.messages import DISPATCH_QUEUE
from services.common.periodic import Periodic

from .client import HTTP_SESSION
from .deliver import Dispatcher
from .keys import DISPATCHER, SETTINGS

log = structlog.get_logger(__name__)


async def start_consuming(app: web.Application) -> tuple[AbstractQueue, str]:
    settings = app[SETTINGS]
    channel = await app[BROKER].open_channel()
    # Prefetch bounds the deliveries in flight; each message is handled in its own task.
    await channel.set_qos(prefetch_count=settings.prefetch)
    queue = await channel.declare_queue(DISPATCH_QUEUE, durable=True, arguments=QUORUM)
    tag = await queue.consume(app[DISPATCHER].on_message)
    log.info("consuming", queue=DISPATCH_QUEUE, prefetch=settings.prefetch)
    return queue, tag


async def dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    dispatcher = Dispatcher(settings, app[DB_POOL], app[BROKER], app[HTTP_SESSION])
    app[DISPATCHER] = dispatcher
    starter = asyncio.create_task(start_consuming(app))
    sweeper = Periodic(dispatcher.sweep_stalled, settings.sweep_interval_seconds, "sweep_failed")
    sweeper.start()
    yield
    await sweeper.stop()
    if starter.done() and starter.exception() is None:
        queue, tag = starter.result()
        # Stop intake first; messages already taken finish within the grace period.
        with contextlib.suppress(Exception):
            await queue.cancel(tag)
    else:
        starter.cancel()
    pending = set(dispatcher.tasks)
    if pending:
        log.info("draining", in_flight=len(pending), grace_s=settings.shutdown_grace_seconds)
        _, still = await asyncio.wait(pending, timeout=settings.shutdown_grace_seconds)
        for task in still:
            task.cancel()  # unacked: the broker requeues it when the channel closes
        if still:
            log.warning("drain_incomplete", requeued=len(still))
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await starter
