"""The fan-out worker: turns an accepted event into one delivery per subscribed webhook.

It consumes FANOUT_QUEUE and, in keyset batches of the user's webhooks for the event's
type, creates the deliveries whose filter matches (one statement per batch, never two
deliveries of one event to one webhook), publishes them, and acks only after the last
batch. A crash re-runs the fan-out from the start; see docs/events.md.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web

from services.common import events
from services.common.batch import Batcher
from services.common.broker import BROKER, BROKER_ERRORS, Broker
from services.common.consuming import Consumer, Outcome
from services.common.db import DATABASE_ERRORS, DB_POOL
from services.common.messages import (
    FANOUT_QUEUE,
    DeliveryBatch,
    DeliveryEvent,
    FanoutMessage,
    RecordedMessage,
)
from services.common.periodic import Periodic
from services.common.tracing import annotate_span, current_carrier

from ..keys import FANOUT, OUTBOX_CLEANUP, SETTINGS
from ..relay.outbox_cleanup import OutboxCleanup
from ..relay.publishing import publish_recorded
from . import db, inline
from .filters import FilterCache

log = structlog.get_logger(__name__)

# Webhooks per statement: bounded work and locks per round trip, whatever the fan-out.
BATCH_SIZE = 500
# At most this many webhooks: POST /event fans out itself, before its answer, rather than
# through the worker (most events go to a webhook or two; the hop costs more than that).
INLINE_WEBHOOKS = 32
# Events fanned out at once by one worker.
PREFETCH = 64
OUTAGE_BACKOFF_SECONDS = 2.0
# An event still not fanned out this long after acceptance lost its message: ask again.
SWEEP_AFTER_SECONDS = 300.0
SWEEP_INTERVAL_SECONDS = 60.0
SWEEP_LIMIT = 100
OUTAGE_ERRORS = (*DATABASE_ERRORS, *BROKER_ERRORS)


def announced_deliveries(announced: list[tuple[int, DeliveryBatch]]) -> int:
    return sum(len(batch.events) for _, batch in announced)


class FanoutWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        cleanup: OutboxCleanup,
        publish_timeout: float,
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.cleanup = cleanup
        self.publish_timeout = publish_timeout
        self.filters = FilterCache()
        self.small_fanouts = Batcher(self.fan_out_small, key=lambda event: event.id)

    async def handle(self, message: AbstractIncomingMessage, msg: FanoutMessage) -> Outcome:
        structlog.contextvars.bind_contextvars(
            event_id=str(msg.event_id), request_id=msg.request_id
        )
        try:
            created = await self.fan_out(msg.event_id)
        except Exception as exc:
            # An outage (or a bug): hand the message back after a pause, so that it
            # does not spin; the next run skips the deliveries this one made.
            log.warning("fanout_postponed", error=repr(exc), outage=isinstance(exc, OUTAGE_ERRORS))
            await asyncio.sleep(OUTAGE_BACKOFF_SECONDS)
            return Outcome.REQUEUE
        annotate_span({"event_id": str(msg.event_id), "deliveries": created})
        return Outcome.ACK

    async def fan_out(self, event_id: uuid.UUID) -> int:
        """Create and publish the event's missing deliveries; how many were created."""
        event = await events.to_fan_out(self.pool, event_id)
        if event is None:
            log.warning("fanout_event_unknown")
            return 0
        if event.fanned_out_at is not None:
            # Done before (a copy of the message): any delivery not yet published
            # is in the outbox, which the relay publishes.
            return 0
        # The consumer span's context: the relay publishes what this run leaves in its trace.
        trace_context = current_carrier()
        created, after = 0, None
        while True:
            webhooks = await db.subscribers(self.pool, event, after, BATCH_SIZE)
            last = len(webhooks) < BATCH_SIZE
            batch = [
                self.new_delivery(event, webhook)
                for webhook in webhooks
                if self.filters.matcher(webhook)(event.payload)
            ]
            announced = await db.create_fanout_deliveries(
                self.pool, event, batch, last, trace_context
            )
            created += announced_deliveries(announced)
            await self.publish(announced)
            if last:
                log.info("event_fanned_out", deliveries=created)
                return created
            after = webhooks[-1].id

    async def fan_out_inline(self, event: events.NewEvent) -> inline.Announced | None:
        """The whole fan-out of an event accepted alone (it had an Idempotency-Key) with at
        most INLINE_WEBHOOKS webhooks, in its request, together with those of the events
        accepted beside it (see fan_out_small): the outbox rows announcing its deliveries,
        for the request to publish. None (nothing done) if it has more: the worker fans it
        out, so the request's work stays bounded however many webhooks there are."""
        return await self.small_fanouts(event)

    async def accept_small(self, batch: list[events.NewEvent]) -> list[inline.AcceptedHere]:
        """Events without an Idempotency-Key that arrived together, accepted with their
        fan-outs in one statement: one query for the subscribers of all first, then each
        event born fanned out (at most INLINE_WEBHOOKS webhooks), or else accepted with
        its fan-out message for the worker."""
        subscribed = await inline.subscribers(self.pool, batch, INLINE_WEBHOOKS + 1)
        plans = [
            (event, self.small_fanout(event, subscribed[inline.subscription(event)]))
            for event in batch
        ]
        return await inline.accept_and_fan_out(self.pool, plans)

    async def fan_out_small(self, batch: list[events.NewEvent]) -> list[inline.Announced | None]:
        """The fan-outs of events accepted together, as the worker's last batch: one
        query for the subscribers of all, one statement for all their deliveries. For
        each event its outbox rows, or None if it is the worker's (more webhooks than
        INLINE_WEBHOOKS, or its filters failed here)."""
        subscribed = await inline.subscribers(self.pool, batch, INLINE_WEBHOOKS + 1)
        fanned_out: list[events.NewEvent] = []
        created: list[tuple[uuid.UUID, db.FanoutDelivery]] = []
        for event in batch:
            made = self.small_fanout(event, subscribed[inline.subscription(event)])
            if made is not None:
                fanned_out.append(event)
                created += [(event.id, delivery) for delivery in made]
        if not fanned_out:
            return [None] * len(batch)
        announced = await inline.create_deliveries(self.pool, fanned_out, created)
        return [announced.get(event.id) for event in batch]

    def small_fanout(
        self, event: events.NewEvent, subscribed: list[inline.Subscribed]
    ) -> list[db.FanoutDelivery] | None:
        """The deliveries of `event` to those of `subscribed` (created at or before its
        acceptance) whose filter it matches; None if the worker must fan it out."""
        if len(subscribed) > INLINE_WEBHOOKS:
            return None
        try:
            return [
                self.new_delivery(event, s.webhook)
                for s in subscribed
                if s.created_at <= event.created_at
                and self.filters.matcher(s.webhook)(event.payload)
            ]
        except Exception as exc:  # one event's failure is not its batch's
            log.warning("inline_fanout_failed", event_id=str(event.id), error=repr(exc))
            return None

    def new_delivery(
        self, event: events.EventToFanOut | events.NewEvent, webhook: db.Subscriber
    ) -> db.FanoutDelivery:
        delivery_id = uuid.uuid4()
        # An event fanned out by its request may be announced beside other requests'
        # events: its delivery keeps its request's trace (the worker's are in its own).
        trace = event.trace_context if isinstance(event, events.NewEvent) else None
        # Its created_at is the event's (deliveries.create_from).
        message = DeliveryEvent(
            event.event_type,
            delivery_id,
            webhook.id,
            None,
            event.request_id,
            trace,
            event.created_at,
        )
        return db.FanoutDelivery(delivery_id, webhook.id, webhook.disabled, message.item())

    async def publish(self, announced: list[tuple[int, DeliveryBatch]]) -> None:
        recorded: list[tuple[int, RecordedMessage]] = list(announced)
        await publish_recorded(self.broker, self.cleanup, recorded, self.publish_timeout, "fanout")

    async def request_lost_fanouts(self) -> None:
        """Ask again for the fan-out of events whose message was lost (the safety net)."""
        if not self.broker.connected:
            return
        for msg in await events.not_fanned_out(self.pool, SWEEP_AFTER_SECONDS, SWEEP_LIMIT):
            await self.broker.request_fanout(msg, timeout=self.publish_timeout)
            log.warning("fanout_requested_again", event_id=str(msg.event_id))


async def fanout_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    worker = FanoutWorker(
        app[DB_POOL],
        app[BROKER],
        app[OUTBOX_CLEANUP],
        settings.publish_timeout_seconds,
    )
    app[FANOUT] = worker
    consumer = Consumer(app[BROKER], FANOUT_QUEUE, PREFETCH, FanoutMessage.decode, worker.handle)
    consumer.start()
    sweep = Periodic(worker.request_lost_fanouts, SWEEP_INTERVAL_SECONDS, "fanout_sweep_failed")
    async with sweep:
        yield
    # A fan-out cut short is redelivered (unacked) and resumes where the rows say.
    await consumer.stop(settings.shutdown_grace_seconds)
